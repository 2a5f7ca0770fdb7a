//! Revocations: the authority's signed word that a node is shut out, and the set of them.
//!
//! A revocation names a node and the serial of its latest certificate; it shuts out the node
//! itself (every certificate naming it), because a box whose key may be lost is replaced by a
//! new identity, never re-certified. A [`RevocationList`] holds only revocations whose
//! signature verified; merging two lists is a set union (commutative, idempotent), so the list
//! can be replicated as a record and merged in any order.
//!
//! # Encoding, version 1
//!
//! A revocation is 133 bytes: magic `CLRV`, version `1`, network id (16), node id (32), serial
//! (u64), revoked_at unix seconds (i64), ed25519 signature (64) over
//! `culao-revocation-signature-v1` and the 69 bytes before it. A list is magic `CLRL`,
//! version `1`, a u32 count, then that many revocations in ascending (node, serial) order.
//! On disk both are hex armored (`CULAO REVOCATION`, `CULAO REVOCATIONS`).

use std::collections::BTreeMap;

use crdt_model::NodeId;

use crate::authority::AuthorityPublicKey;
use crate::codec::{self, DecodeError, Reader, Writer};
use crate::names::NetworkId;

const MAGIC: &[u8; 4] = b"CLRV";
const LIST_MAGIC: &[u8; 4] = b"CLRL";
pub const REVOCATION_VERSION: u8 = 1;
const SIGNATURE_CONTEXT: &[u8] = b"culao-revocation-signature-v1";
const ENCODED_LEN: usize = 133;

/// Why a revocation or a list of them was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RevocationError {
    #[error("revocation is truncated: {needed} more bytes expected, {remaining} left")]
    Truncated { needed: usize, remaining: usize },
    #[error("revocation is malformed: {reason}")]
    Malformed { reason: String },
    #[error("revocation version {version} is unknown (this build reads {REVOCATION_VERSION})")]
    UnknownVersion { version: u8 },
    #[error("revocation of {node} is for network {found}, not {expected}")]
    OtherNetwork {
        node: NodeId,
        expected: NetworkId,
        found: NetworkId,
    },
    #[error("revocation of {node} is not signed by this network's authority")]
    BadSignature { node: NodeId },
}

impl From<DecodeError> for RevocationError {
    fn from(err: DecodeError) -> Self {
        match err {
            DecodeError::Truncated { needed, remaining } => {
                RevocationError::Truncated { needed, remaining }
            }
            DecodeError::Malformed { reason } => RevocationError::Malformed { reason },
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct RevocationBody {
    pub network: NetworkId,
    pub node: NodeId,
    /// The serial of the node's latest certificate when it was revoked (for the record).
    pub serial: u64,
    pub revoked_at_unix_s: i64,
}

impl RevocationBody {
    fn encode(&self) -> Vec<u8> {
        Writer::new()
            .bytes(MAGIC)
            .u8(REVOCATION_VERSION)
            .bytes(self.network.as_bytes())
            .bytes(self.node.as_bytes())
            .u64(self.serial)
            .i64(self.revoked_at_unix_s)
            .finish()
    }

    pub(crate) fn signed_message(&self) -> Vec<u8> {
        let mut message = SIGNATURE_CONTEXT.to_vec();
        message.extend_from_slice(&self.encode());
        message
    }
}

/// A signed revocation. Decoding checks its shape; [`Revocation::verify`] its signature.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Revocation {
    body: RevocationBody,
    signature: [u8; 64],
}

impl Revocation {
    pub(crate) fn from_parts(body: RevocationBody, signature: [u8; 64]) -> Self {
        Self { body, signature }
    }

    pub fn body(&self) -> &RevocationBody {
        &self.body
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = self.body.encode();
        bytes.extend_from_slice(&self.signature);
        bytes
    }

    fn read(reader: &mut Reader<'_>) -> Result<Self, RevocationError> {
        if reader.take(MAGIC.len())? != MAGIC {
            return Err(RevocationError::Malformed {
                reason: "not a culao revocation (bad magic)".to_owned(),
            });
        }
        let version = reader.u8()?;
        if version != REVOCATION_VERSION {
            return Err(RevocationError::UnknownVersion { version });
        }
        let body = RevocationBody {
            network: NetworkId::from_bytes(reader.array()?),
            node: NodeId::from_bytes(reader.array()?),
            serial: reader.u64()?,
            revoked_at_unix_s: reader.i64()?,
        };
        Ok(Self {
            body,
            signature: reader.array()?,
        })
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, RevocationError> {
        let mut reader = Reader::new(bytes);
        let revocation = Self::read(&mut reader)?;
        reader.finish()?;
        Ok(revocation)
    }

    pub fn to_armored(&self) -> String {
        codec::armor("REVOCATION", &self.encode())
    }

    pub fn from_armored(text: &str) -> Result<Self, RevocationError> {
        Self::decode(&codec::unarmor("REVOCATION", text)?)
    }

    pub fn verify(&self, authority: &AuthorityPublicKey) -> Result<(), RevocationError> {
        if self.body.network != authority.network() {
            return Err(RevocationError::OtherNetwork {
                node: self.body.node,
                expected: authority.network(),
                found: self.body.network,
            });
        }
        if !authority.verifies(&self.body.signed_message(), &self.signature) {
            return Err(RevocationError::BadSignature {
                node: self.body.node,
            });
        }
        Ok(())
    }
}

/// The verified revocations a box knows of.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct RevocationList {
    /// Keyed by (node, serial); on a collision the earlier revocation is kept, so merging is
    /// deterministic whatever the order.
    entries: BTreeMap<(NodeId, u64), Revocation>,
}

impl RevocationList {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Revocation> {
        self.entries.values()
    }

    /// The earliest revocation of `node`, if it is revoked.
    pub fn revocation_of(&self, node: &NodeId) -> Option<&Revocation> {
        self.entries
            .range((*node, 0)..=(*node, u64::MAX))
            .map(|(_, r)| r)
            .min_by_key(|r| r.body.revoked_at_unix_s)
    }

    pub fn is_revoked(&self, node: &NodeId) -> bool {
        self.revocation_of(node).is_some()
    }

    /// Adds `revocation` once its signature verifies; true if the list changed.
    pub fn insert(
        &mut self,
        authority: &AuthorityPublicKey,
        revocation: Revocation,
    ) -> Result<bool, RevocationError> {
        revocation.verify(authority)?;
        let key = (revocation.body.node, revocation.body.serial);
        let rank = |r: &Revocation| (r.body.revoked_at_unix_s, r.signature);
        match self.entries.get(&key) {
            Some(held) if rank(held) <= rank(&revocation) => Ok(false),
            _ => {
                self.entries.insert(key, revocation);
                Ok(true)
            }
        }
    }

    /// Adds every revocation of `other` (verifying each); the number that changed the list.
    pub fn merge(
        &mut self,
        authority: &AuthorityPublicKey,
        other: &RevocationList,
    ) -> Result<usize, RevocationError> {
        let mut changed = 0;
        for revocation in other.iter() {
            changed += usize::from(self.insert(authority, *revocation)?);
        }
        Ok(changed)
    }

    pub fn encode(&self) -> Vec<u8> {
        let count = u32::try_from(self.entries.len()).unwrap_or(u32::MAX);
        let mut writer = Writer::new();
        writer.bytes(LIST_MAGIC).u8(REVOCATION_VERSION).u32(count);
        for revocation in self.entries.values().take(count as usize) {
            writer.bytes(&revocation.encode());
        }
        writer.finish()
    }

    /// Decodes a list, verifying every revocation against `authority`.
    pub fn decode(bytes: &[u8], authority: &AuthorityPublicKey) -> Result<Self, RevocationError> {
        let mut reader = Reader::new(bytes);
        if reader.take(LIST_MAGIC.len())? != LIST_MAGIC {
            return Err(RevocationError::Malformed {
                reason: "not a culao revocation list (bad magic)".to_owned(),
            });
        }
        let version = reader.u8()?;
        if version != REVOCATION_VERSION {
            return Err(RevocationError::UnknownVersion { version });
        }
        let count = reader.u32()? as usize;
        let remaining = bytes.len() - reader.position();
        if remaining != count.saturating_mul(ENCODED_LEN) {
            return Err(RevocationError::Malformed {
                reason: format!("{count} revocations announced, {remaining} bytes follow"),
            });
        }
        let mut list = Self::new();
        for _ in 0..count {
            list.insert(authority, Revocation::read(&mut reader)?)?;
        }
        reader.finish()?;
        Ok(list)
    }

    pub fn to_armored(&self) -> String {
        codec::armor("REVOCATIONS", &self.encode())
    }

    pub fn from_armored(
        text: &str,
        authority: &AuthorityPublicKey,
    ) -> Result<Self, RevocationError> {
        Self::decode(&codec::unarmor("REVOCATIONS", text)?, authority)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authority::AuthorityKey;

    fn authority(seed: u8) -> AuthorityKey {
        AuthorityKey::from_secret_bytes(NetworkId::from_bytes([seed; 16]), [seed; 32])
    }

    fn node(seed: u8) -> NodeId {
        crdt_model::Identity::from_secret_bytes([seed; 32]).node_id()
    }

    #[test]
    fn a_revocation_round_trips_and_verifies() {
        let authority = authority(1);
        let revocation = authority.revoke(node(2), 7, 1_000);
        assert_eq!(revocation.encode().len(), ENCODED_LEN);
        assert_eq!(Revocation::decode(&revocation.encode()), Ok(revocation));
        let text = revocation.to_armored();
        assert_eq!(Revocation::from_armored(&text), Ok(revocation));
        assert!(revocation.verify(&authority.public()).is_ok());
    }

    #[test]
    fn a_list_refuses_forged_or_foreign_revocations() {
        let ours = authority(1);
        let mut list = RevocationList::new();
        let foreign = authority(2).revoke(node(2), 1, 1_000);
        assert!(matches!(
            list.insert(&ours.public(), foreign),
            Err(RevocationError::OtherNetwork { .. })
        ));
        let impostor = AuthorityKey::from_secret_bytes(ours.network(), [9; 32]);
        assert_eq!(
            list.insert(&ours.public(), impostor.revoke(node(2), 1, 1_000)),
            Err(RevocationError::BadSignature { node: node(2) })
        );
        assert!(list.is_empty());

        let mut tampered = ours.revoke(node(2), 1, 1_000).encode();
        tampered[30] ^= 1;
        let tampered = Revocation::decode(&tampered).unwrap();
        assert!(list.insert(&ours.public(), tampered).is_err());
    }

    #[test]
    fn merging_is_a_set_union_in_any_order() {
        let authority = authority(1);
        let public = authority.public();
        let revocations = [
            authority.revoke(node(2), 1, 1_000),
            authority.revoke(node(3), 4, 1_100),
            authority.revoke(node(2), 1, 900),
        ];
        let mut a = RevocationList::new();
        let mut b = RevocationList::new();
        for r in revocations {
            a.insert(&public, r).unwrap();
        }
        for r in revocations.iter().rev() {
            b.insert(&public, *r).unwrap();
        }
        assert_eq!(a, b);
        assert_eq!(a.len(), 2);
        assert_eq!(
            a.revocation_of(&node(2)).unwrap().body().revoked_at_unix_s,
            900
        );
        assert_eq!(a.clone().merge(&public, &b), Ok(0), "idempotent");
        assert!(!a.is_revoked(&node(4)));

        let decoded = RevocationList::from_armored(&a.to_armored(), &public).unwrap();
        assert_eq!(decoded, a);
        let bytes = a.encode();
        assert!(RevocationList::decode(&bytes[..bytes.len() - 1], &public).is_err());
    }
}
