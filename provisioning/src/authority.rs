//! The network authority: the ed25519 key that signs certificates and revocations.
//!
//! The secret half lives only in the network directory, encrypted (see [`crate::sealed`]);
//! boxes hold the public half, `authority.pub`: one line,
//! `culao-authority-v1 <network id, 32 hex> <public key, 64 hex>`.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use crdt_model::{NodeId, Scope};
use ed25519_dalek::{Signer as _, SigningKey, Verifier as _, VerifyingKey};

use crate::cert::{Certificate, CertificateBody};
use crate::names::NetworkId;
use crate::revocation::{Revocation, RevocationBody};

const PUBLIC_HEADER: &str = "culao-authority-v1";

/// Why a certificate was not issued.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IssueError {
    #[error("certificate names network {found}, this authority signs for {expected}")]
    OtherNetwork {
        expected: NetworkId,
        found: NetworkId,
    },
    #[error("not_before {not_before_unix_s} is after not_after {not_after_unix_s}")]
    Validity {
        not_before_unix_s: i64,
        not_after_unix_s: i64,
    },
    #[error("scope {scope} is written but not read; a writer must read what it writes")]
    WriteWithoutRead { scope: Scope },
    #[error("scope {scope} is both read and carried")]
    ReadAndCarry { scope: Scope },
    #[error("more than 255 scopes in one set")]
    TooManyScopes,
}

/// The authority's public key, bound to its network.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct AuthorityPublicKey {
    network: NetworkId,
    key: VerifyingKey,
}

impl AuthorityPublicKey {
    pub fn network(&self) -> NetworkId {
        self.network
    }

    pub fn key_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    pub(crate) fn verifies(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        let signature = ed25519_dalek::Signature::from_bytes(signature);
        self.key.verify(message, &signature).is_ok()
    }
}

impl fmt::Debug for AuthorityPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = self.key.to_bytes();
        write!(
            f,
            "AuthorityPublicKey(network {}, key {})",
            self.network.short(),
            hex::encode(&key[..4])
        )
    }
}

/// `authority.pub` that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a culao authority public key (expected `{PUBLIC_HEADER} <32 hex> <64 hex>`)")]
pub struct MalformedAuthority;

impl fmt::Display for AuthorityPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{PUBLIC_HEADER} {} {}",
            self.network,
            hex::encode(self.key.to_bytes())
        )
    }
}

impl FromStr for AuthorityPublicKey {
    type Err = MalformedAuthority;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut words = s.split_whitespace();
        if words.next() != Some(PUBLIC_HEADER) {
            return Err(MalformedAuthority);
        }
        let network = words
            .next()
            .and_then(|w| w.parse::<NetworkId>().ok())
            .ok_or(MalformedAuthority)?;
        let hex_key = words.next().ok_or(MalformedAuthority)?;
        if words.next().is_some() {
            return Err(MalformedAuthority);
        }
        let key = crdt_model::ids::lower_hex::<32>(hex_key).ok_or(MalformedAuthority)?;
        let key = VerifyingKey::from_bytes(&key).map_err(|_| MalformedAuthority)?;
        Ok(Self { network, key })
    }
}

/// The authority's signing key. Its `Debug` never shows the secret.
#[derive(Clone)]
pub struct AuthorityKey {
    network: NetworkId,
    key: SigningKey,
}

impl AuthorityKey {
    /// The authority of `network` whose secret key is `seed`. The caller brings the randomness.
    pub fn from_secret_bytes(network: NetworkId, seed: [u8; 32]) -> Self {
        Self {
            network,
            key: SigningKey::from_bytes(&seed),
        }
    }

    pub(crate) fn secret_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    pub fn network(&self) -> NetworkId {
        self.network
    }

    pub fn public(&self) -> AuthorityPublicKey {
        AuthorityPublicKey {
            network: self.network,
            key: self.key.verifying_key(),
        }
    }

    /// Signs `body` after checking that it is one this authority may vouch for.
    pub fn issue(&self, body: CertificateBody) -> Result<Certificate, IssueError> {
        if body.network != self.network {
            return Err(IssueError::OtherNetwork {
                expected: self.network,
                found: body.network,
            });
        }
        if body.not_before_unix_s > body.not_after_unix_s {
            return Err(IssueError::Validity {
                not_before_unix_s: body.not_before_unix_s,
                not_after_unix_s: body.not_after_unix_s,
            });
        }
        check_sets(&body.read, &body.write, &body.carry)?;

        let signature = self.key.sign(&body.signed_message()).to_bytes();
        Ok(Certificate::from_parts(body, signature))
    }

    /// Signs the revocation of `node`, whose latest certificate has `serial`.
    pub fn revoke(&self, node: NodeId, serial: u64, revoked_at_unix_s: i64) -> Revocation {
        let body = RevocationBody {
            network: self.network,
            node,
            serial,
            revoked_at_unix_s,
        };
        let signature = self.key.sign(&body.signed_message()).to_bytes();
        Revocation::from_parts(body, signature)
    }
}

fn check_sets(
    read: &BTreeSet<Scope>,
    write: &BTreeSet<Scope>,
    carry: &BTreeSet<Scope>,
) -> Result<(), IssueError> {
    if [read, write, carry].iter().any(|set| set.len() > 255) {
        return Err(IssueError::TooManyScopes);
    }
    if let Some(scope) = write.difference(read).next() {
        return Err(IssueError::WriteWithoutRead {
            scope: scope.clone(),
        });
    }
    if let Some(scope) = read.intersection(carry).next() {
        return Err(IssueError::ReadAndCarry {
            scope: scope.clone(),
        });
    }
    Ok(())
}

impl fmt::Debug for AuthorityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "AuthorityKey(network {}, secret: <hidden>)",
            self.network.short()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_public_key_round_trips_through_its_line() {
        let authority = AuthorityKey::from_secret_bytes(NetworkId::from_bytes([3; 16]), [4; 32]);
        let line = authority.public().to_string();
        assert!(line.starts_with("culao-authority-v1 03030303"));
        assert_eq!(line.parse::<AuthorityPublicKey>(), Ok(authority.public()));
        for bad in [
            "",
            "culao-authority-v1",
            &line.to_uppercase(),
            &format!("{line} x"),
        ] {
            assert!(bad.parse::<AuthorityPublicKey>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn authority_debug_hides_the_secret() {
        let authority = AuthorityKey::from_secret_bytes(NetworkId::from_bytes([3; 16]), [9; 32]);
        let shown = format!("{authority:?}");
        assert!(shown.contains("<hidden>"));
        assert!(!shown.contains(&hex::encode([9u8; 32])));
    }
}
