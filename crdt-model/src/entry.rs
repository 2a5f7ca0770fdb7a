//! Feed entries: one automerge change, placed on its origin's hash-chained feed and signed.
//!
//! An entry is immutable once written, so anyone may relay it. The hash of an entry covers
//! every field including the hash of its predecessor; a signature over the hash of entry `n`
//! therefore vouches for the whole feed up to `n`, which is how one signature covers a run of
//! entries on the wire (see `docs/protocol.md`).

use std::fmt;

use automerge::ActorId;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};

use crate::ids::{DocId, FeedId, IdError, NodeId, Scope};

/// Domain separation for entry hashes, so an entry hash can never be confused with the hash
/// of anything else this protocol signs.
const ENTRY_HASH_CONTEXT: &str = "culao 2026-12 feed entry v1";
const ENTRY_SIGNATURE_PREFIX: &[u8] = b"culao-entry-signature-v1";
const ACTOR_CONTEXT: &str = "culao 2026-12 automerge actor v1";

/// The blake3 hash of an entry. The entry before sequence number 1 has [`EntryHash::GENESIS`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntryHash(pub [u8; 32]);

impl EntryHash {
    pub const GENESIS: Self = Self([0; 32]);
}

impl fmt::Debug for EntryHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EntryHash({})", hex::encode(&self.0[..6]))
    }
}

/// An ed25519 signature by an entry's origin over an entry hash.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub [u8; 64]);

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({}..)", hex::encode(&self.0[..4]))
    }
}

/// One change on one feed.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Entry {
    pub origin: NodeId,
    pub scope: Scope,
    pub seq: u64,
    pub prev: EntryHash,
    pub doc: DocId,
    /// The automerge change, exactly as `Change::raw_bytes` gives it.
    pub change: Vec<u8>,
}

impl Entry {
    pub fn feed(&self) -> FeedId {
        FeedId {
            origin: self.origin,
            scope: self.scope.clone(),
        }
    }

    pub fn hash(&self) -> EntryHash {
        let mut hasher = blake3::Hasher::new_derive_key(ENTRY_HASH_CONTEXT);
        hasher.update(self.origin.as_bytes());
        hasher.update(&[self.scope.as_str().len() as u8]);
        hasher.update(self.scope.as_str().as_bytes());
        hasher.update(&self.seq.to_be_bytes());
        hasher.update(&self.prev.0);
        hasher.update(self.doc.as_bytes());
        hasher.update(&(self.change.len() as u64).to_be_bytes());
        hasher.update(&self.change);
        EntryHash(*hasher.finalize().as_bytes())
    }
}

/// Why an entry or its signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EntryError {
    #[error("origin {origin} is not a valid ed25519 public key")]
    BadOriginKey { origin: NodeId },
    #[error("signature of {origin} over {scope} seq {seq} does not verify")]
    BadSignature {
        origin: NodeId,
        scope: Scope,
        seq: u64,
    },
    #[error(
        "entry {scope} seq {seq} of {origin} does not carry a valid automerge change: {reason}"
    )]
    BadChange {
        origin: NodeId,
        scope: Scope,
        seq: u64,
        reason: String,
    },
    #[error("entry {scope} seq {seq} of {origin} carries a change by another actor")]
    ActorMismatch {
        origin: NodeId,
        scope: Scope,
        seq: u64,
    },
}

/// The automerge actor that every change written by `origin` must carry.
///
/// Deriving it (instead of trusting whatever actor a change names) is what stops one box from
/// writing changes in another's name inside its own, validly signed, entries.
pub fn actor_for(origin: &NodeId) -> ActorId {
    let hash = blake3::derive_key(ACTOR_CONTEXT, origin.as_bytes());
    ActorId::from(&hash[..16])
}

/// Checks that `signature` is `origin`'s over `hash`.
pub fn verify_signature(
    feed: &FeedId,
    seq: u64,
    hash: &EntryHash,
    signature: &Signature,
) -> Result<(), EntryError> {
    let key =
        VerifyingKey::from_bytes(feed.origin.as_bytes()).map_err(|_| EntryError::BadOriginKey {
            origin: feed.origin,
        })?;
    let signature = ed25519_dalek::Signature::from_bytes(&signature.0);
    key.verify_strict(&signed_message(hash), &signature)
        .map_err(|_| EntryError::BadSignature {
            origin: feed.origin,
            scope: feed.scope.clone(),
            seq,
        })
}

/// Checks that an entry's payload is one automerge change by its origin's actor.
pub fn check_change(entry: &Entry) -> Result<automerge::Change, EntryError> {
    let change = automerge::Change::from_bytes(entry.change.clone()).map_err(|err| {
        EntryError::BadChange {
            origin: entry.origin,
            scope: entry.scope.clone(),
            seq: entry.seq,
            reason: err.to_string(),
        }
    })?;
    if change.actor_id() != &actor_for(&entry.origin) {
        return Err(EntryError::ActorMismatch {
            origin: entry.origin,
            scope: entry.scope.clone(),
            seq: entry.seq,
        });
    }
    Ok(change)
}

fn signed_message(hash: &EntryHash) -> Vec<u8> {
    let mut message = Vec::with_capacity(ENTRY_SIGNATURE_PREFIX.len() + 32);
    message.extend_from_slice(ENTRY_SIGNATURE_PREFIX);
    message.extend_from_slice(&hash.0);
    message
}

/// A node's signing identity. Its `Debug` never shows the secret.
#[derive(Clone)]
pub struct Identity {
    key: SigningKey,
}

impl Identity {
    /// The identity whose secret key is `seed`. The caller brings the randomness.
    pub fn from_secret_bytes(seed: [u8; 32]) -> Self {
        Self {
            key: SigningKey::from_bytes(&seed),
        }
    }

    pub fn secret_bytes(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    pub fn node_id(&self) -> NodeId {
        NodeId::from_bytes(self.key.verifying_key().to_bytes())
    }

    pub fn sign(&self, hash: &EntryHash) -> Signature {
        Signature(self.key.sign(&signed_message(hash)).to_bytes())
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identity({}, secret: <hidden>)", self.node_id().short())
    }
}

/// Checks that a node id is a usable ed25519 public key (not every 32 bytes is one).
pub fn check_node_key(id: &NodeId) -> Result<(), IdError> {
    VerifyingKey::from_bytes(id.as_bytes())
        .map(|_| ())
        .map_err(|_| IdError::NodeKey {
            value: id.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(identity: &Identity) -> Entry {
        Entry {
            origin: identity.node_id(),
            scope: Scope::new("tickets").unwrap(),
            seq: 1,
            prev: EntryHash::GENESIS,
            doc: DocId::from_bytes([7; 16]),
            change: vec![1, 2, 3],
        }
    }

    #[test]
    fn a_signature_verifies_only_for_its_hash_and_origin() {
        let alice = Identity::from_secret_bytes([1; 32]);
        let bob = Identity::from_secret_bytes([2; 32]);
        let e = entry(&alice);
        let signature = alice.sign(&e.hash());
        assert!(verify_signature(&e.feed(), 1, &e.hash(), &signature).is_ok());

        let mut tampered = e.clone();
        tampered.change.push(4);
        assert!(verify_signature(&e.feed(), 1, &tampered.hash(), &signature).is_err());

        let forged = bob.sign(&e.hash());
        assert!(matches!(
            verify_signature(&e.feed(), 1, &e.hash(), &forged),
            Err(EntryError::BadSignature { .. })
        ));
    }

    #[test]
    fn every_field_is_covered_by_the_hash() {
        let e = entry(&Identity::from_secret_bytes([1; 32]));
        let mut variants = vec![];
        let mut v = e.clone();
        v.seq = 2;
        variants.push(v);
        let mut v = e.clone();
        v.prev = EntryHash([1; 32]);
        variants.push(v);
        let mut v = e.clone();
        v.doc = DocId::from_bytes([8; 16]);
        variants.push(v);
        let mut v = e.clone();
        v.scope = Scope::new("ticket").unwrap();
        variants.push(v);
        for v in variants {
            assert_ne!(v.hash(), e.hash(), "{v:?}");
        }
    }

    #[test]
    fn identity_debug_hides_the_secret() {
        let identity = Identity::from_secret_bytes([9; 32]);
        let shown = format!("{identity:?}");
        assert!(shown.contains("<hidden>"));
        assert!(!shown.contains(&hex::encode([9u8; 32])));
    }
}
