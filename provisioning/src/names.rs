//! The names an operator types: the network's name and id, and a box's site.
//!
//! Network names and sites are slugs (`phu-quy`, `tam-thanh-clinic`): 1 to 63 characters of
//! `a-z`, `0-9` and `-`, starting with a letter and not ending with `-`. That is exactly a DNS
//! label, so a site doubles as the name in its box's TLS certificate.

use std::fmt;
use std::str::FromStr;

/// Longest network name or site, in bytes (a DNS label).
pub const MAX_NAME_LEN: usize = 63;

/// A name or id that does not have the expected shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    #[error(
        "{what} {value:?} must be 1 to {MAX_NAME_LEN} characters of a-z, 0-9 or '-', \
         starting with a letter and not ending with '-'"
    )]
    Slug { what: &'static str, value: String },
    #[error("network id {value:?} is not 32 lowercase hex digits")]
    NetworkId { value: String },
}

fn is_slug(s: &str) -> bool {
    let valid = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-';
    !s.is_empty()
        && s.len() <= MAX_NAME_LEN
        && s.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && !s.ends_with('-')
        && s.bytes().all(valid)
}

macro_rules! slug_type {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(String);

        impl $name {
            pub fn new(value: &str) -> Result<Self, NameError> {
                if !is_slug(value) {
                    return Err(NameError::Slug {
                        what: $what,
                        value: value.to_owned(),
                    });
                }
                Ok(Self(value.to_owned()))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = NameError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }
    };
}

slug_type!(
    /// The network's human name, e.g. `phu-quy`.
    NetworkName,
    "network name"
);
slug_type!(
    /// Where a box stands, e.g. `tam-thanh-clinic`; unique within a network by convention
    /// (a replaced box keeps its site and gets a new identity).
    Site,
    "site"
);

/// A network: 128 random bits chosen at `culao network init`. Every certificate and
/// revocation names it, so two networks' authorities can never vouch for each other's boxes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NetworkId([u8; 16]);

impl NetworkId {
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// The first 8 hex digits, for log lines.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }
}

impl fmt::Display for NetworkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for NetworkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NetworkId({})", self.short())
    }
}

impl FromStr for NetworkId {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || NameError::NetworkId {
            value: s.to_owned(),
        };
        let bytes = crdt_model::ids::lower_hex::<16>(s).ok_or_else(err)?;
        Ok(Self(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sites_are_dns_labels() {
        for good in ["a", "tam-thanh-clinic", "port1", &"a".repeat(63)] {
            assert!(Site::new(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "Port",
            "1port",
            "port-",
            "has space",
            "ngũ-phụng",
            &"a".repeat(64),
        ] {
            let err = Site::new(bad).unwrap_err();
            assert!(err.to_string().contains("site"), "{err}");
        }
    }

    #[test]
    fn network_ids_round_trip_through_hex() {
        let id = NetworkId::from_bytes([0x5a; 16]);
        assert_eq!(id.to_string().parse::<NetworkId>(), Ok(id));
        assert!("5A".repeat(16).parse::<NetworkId>().is_err());
        assert!("5a".repeat(15).parse::<NetworkId>().is_err());
    }
}
