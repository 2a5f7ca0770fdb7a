//! Signatures already verified, shared by replicas that run side by side in one process.
//!
//! Every replica verifies the origin's signature over each run it applies; on a real box
//! that is one ed25519 verification per run, and a duplicate run is skipped before any. The
//! simulator runs every box of an island in one process, so the same signed entry is
//! verified once per box that receives it. A shared [`VerifiedSignatures`] lets the first
//! verification stand for the others.
//!
//! It remembers only signatures that verified, keyed by entry hash and signature bytes. The
//! hash covers the origin, scope and sequence number, so a hit is the same origin's signature
//! over the same entry; a forged or altered run misses and is verified, and refused, as
//! always. It grows by one 96-byte key per distinct signed entry, for the life of the set.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use crate::entry::{EntryError, EntryHash, Signature, verify_signature};
use crate::ids::FeedId;

/// An entry hash and a signature over it.
type Signed = ([u8; 32], [u8; 64]);

/// A set of (entry hash, signature) pairs known to verify; clones share the set.
#[derive(Clone, Debug, Default)]
pub struct VerifiedSignatures(Arc<Mutex<HashSet<Signed>>>);

impl VerifiedSignatures {
    pub fn new() -> Self {
        Self::default()
    }

    /// Signatures remembered.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// [`verify_signature`], unless this exact signature over this entry already verified.
    pub fn verify(
        &self,
        feed: &FeedId,
        seq: u64,
        hash: &EntryHash,
        signature: &Signature,
    ) -> Result<(), EntryError> {
        let key = (hash.0, signature.0);
        if self.lock().contains(&key) {
            return Ok(());
        }
        verify_signature(feed, seq, hash, signature)?;
        self.lock().insert(key);
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<Signed>> {
        // The set holds only verified pairs; a panic elsewhere cannot leave a wrong one.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::Identity;
    use crate::ids::Scope;

    fn signed(identity: &Identity, seq: u64) -> (FeedId, EntryHash, Signature) {
        let feed = FeedId {
            origin: identity.node_id(),
            scope: Scope::new("tickets").unwrap(),
        };
        let hash = EntryHash([seq as u8; 32]);
        let signature = identity.sign(&hash);
        (feed, hash, signature)
    }

    #[test]
    fn remembers_only_what_verified() {
        let memo = VerifiedSignatures::new();
        let origin = Identity::from_secret_bytes([7; 32]);
        let (feed, hash, signature) = signed(&origin, 1);
        memo.verify(&feed, 1, &hash, &signature).unwrap();
        assert_eq!(memo.len(), 1);
        // A clone shares the set: a second replica's check is a hit.
        memo.clone().verify(&feed, 1, &hash, &signature).unwrap();
        assert_eq!(memo.len(), 1);

        let mut forged = signature;
        forged.0[0] ^= 1;
        assert!(matches!(
            memo.verify(&feed, 1, &hash, &forged),
            Err(EntryError::BadSignature { .. })
        ));
        let other_entry = EntryHash([9; 32]);
        assert!(memo.verify(&feed, 1, &other_entry, &signature).is_err());
        assert_eq!(memo.len(), 1, "refused signatures are not remembered");
    }
}
