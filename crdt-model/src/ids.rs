//! Identifiers: who wrote a change ([`NodeId`]), which document it touches ([`DocId`]), and
//! the access-control unit it belongs to ([`Scope`]).
//!
//! Every id has one text form, used in paths, logs and configuration: node ids are 64
//! lowercase hex digits (the ed25519 public key), document ids 32 lowercase hex digits. Logs
//! use the short forms ([`NodeId::short`], [`DocId::short`]).

use std::fmt;
use std::str::FromStr;

/// Longest scope name, in bytes.
pub const MAX_SCOPE_LEN: usize = 32;

/// An id string or byte sequence that does not have the expected shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    #[error("node id {value:?} is not 64 lowercase hex digits")]
    NodeId { value: String },
    #[error("node id {value} is not a valid ed25519 public key")]
    NodeKey { value: String },
    #[error("document id {value:?} is not 32 lowercase hex digits")]
    DocId { value: String },
    #[error(
        "scope {value:?} must be 1 to {MAX_SCOPE_LEN} characters of a-z, 0-9, '-' or '_', \
         starting with a letter"
    )]
    Scope { value: String },
}

/// A node: the ed25519 public key that signs its feeds (and is its iroh endpoint id).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId([u8; 32]);

/// Exactly `2 * N` lowercase hex digits as `N` bytes: the one spelling of every id in paths,
/// logs and files.
pub fn lower_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != 2 * N || text.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let mut bytes = [0u8; N];
    hex::decode_to_slice(text, &mut bytes).ok()?;
    Some(bytes)
}

impl NodeId {
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The first 8 hex digits, for log lines.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({})", self.short())
    }
}

impl FromStr for NodeId {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || IdError::NodeId {
            value: s.to_owned(),
        };
        let bytes = lower_hex::<32>(s).ok_or_else(err)?;
        Ok(Self(bytes))
    }
}

/// A document: 128 bits, unique within its scope.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DocId([u8; 16]);

impl DocId {
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }
}

impl fmt::Display for DocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for DocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DocId({self})")
    }
}

impl FromStr for DocId {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || IdError::DocId {
            value: s.to_owned(),
        };
        let bytes = lower_hex::<16>(s).ok_or_else(err)?;
        Ok(Self(bytes))
    }
}

/// The access-control and priority unit a document belongs to: `tickets`, `health`, ...
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Scope(String);

impl Scope {
    pub fn new(name: &str) -> Result<Self, IdError> {
        let valid_char =
            |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_';
        let starts_with_letter = name.bytes().next().is_some_and(|b| b.is_ascii_lowercase());
        if name.len() > MAX_SCOPE_LEN || !starts_with_letter || !name.bytes().all(valid_char) {
            return Err(IdError::Scope {
                value: name.to_owned(),
            });
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Sync order: lower goes first when a link's budget cannot carry everything at once.
    ///
    /// Emergencies (radio) and care (health) come before commerce, statistics last; a scope
    /// this build does not know sorts after all known ones.
    pub fn priority(&self) -> u8 {
        match self.0.as_str() {
            "system" => 0,
            "radio" => 1,
            "health" => 2,
            "tickets" => 3,
            "cards" => 4,
            "bookings" => 5,
            "lodging" => 6,
            "sports" => 7,
            "stats" => 8,
            _ => 9,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scope({})", self.0)
    }
}

impl FromStr for Scope {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// One origin's feed for one scope: the unit that sequence numbers and hash chains run in.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct FeedId {
    pub origin: NodeId,
    pub scope: Scope,
}

/// A document's full address: documents with the same id in two scopes are two documents.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct DocKey {
    pub scope: Scope,
    pub doc: DocId,
}

impl fmt::Display for DocKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.scope, self.doc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_round_trip_through_their_text_form() {
        let id = NodeId::from_bytes([0xab; 32]);
        assert_eq!(id.to_string().parse::<NodeId>(), Ok(id));
        assert_eq!(id.short(), "abababab");
    }

    #[test]
    fn malformed_ids_name_the_value() {
        let err = "xyz".parse::<NodeId>().unwrap_err();
        assert!(err.to_string().contains("\"xyz\""));
        assert!(
            "AB".repeat(16).parse::<DocId>().is_err(),
            "uppercase is refused"
        );
        assert!(
            "ab".repeat(15).parse::<DocId>().is_err(),
            "short is refused"
        );
        assert_eq!(
            "ab".repeat(16).parse::<DocId>().unwrap().to_string(),
            "ab".repeat(16)
        );
    }

    #[test]
    fn scopes_are_short_lowercase_names() {
        for good in ["tickets", "health", "a", "x-1_y"] {
            assert!(Scope::new(good).is_ok(), "{good}");
        }
        for bad in ["", "Tickets", "1abc", "has space", "é", &"a".repeat(33)] {
            assert!(Scope::new(bad).is_err(), "{bad:?}");
        }
    }
}
