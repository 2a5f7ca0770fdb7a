//! The narrow storage interface the replica needs, the batch it commits, and [`MemStore`].
//!
//! A replica reads its store on demand (heads and quarantine at open, documents and entries as
//! needed) and writes only through [`Store::commit`], one [`WriteBatch`] at a time. A store
//! must apply a batch atomically: after a crash, all of it or none of it is there. Durability
//! (when a committed batch reaches the disk) is the store owner's business, not the replica's.

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;

use crate::entry::{Entry, EntryHash, Signature};
use crate::ids::{DocId, DocKey, FeedId, NodeId};
use crate::vector::Head;

/// An entry as stored: the signature is kept where the origin's signature is known (every
/// entry of the node's own feeds, the last entry of each run received from others).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct StoredEntry {
    pub entry: Entry,
    pub signature: Option<Signature>,
}

/// Hashes of changes that arrived before their automerge dependencies, per document.
pub type Waiting = Vec<[u8; 32]>;

/// Everything one commit writes.
#[derive(Default, Debug)]
pub struct WriteBatch {
    pub entries: Vec<StoredEntry>,
    pub heads: BTreeMap<FeedId, Head>,
    /// Saved automerge documents, replacing what was stored.
    pub docs: BTreeMap<DocKey, Vec<u8>>,
    /// Changes still waiting for dependencies; an empty list clears the document's record.
    pub waiting: BTreeMap<DocKey, Waiting>,
    pub quarantine: BTreeSet<NodeId>,
}

impl WriteBatch {
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
            && self.heads.is_empty()
            && self.docs.is_empty()
            && self.waiting.is_empty()
            && self.quarantine.is_empty()
    }
}

/// Durable state behind a replica.
pub trait Store {
    type Error: std::error::Error + Send + Sync + 'static;

    /// The head of every feed held.
    fn heads(&self) -> Result<Vec<(FeedId, Head)>, Self::Error>;
    /// Origins caught forking their feeds.
    fn quarantined(&self) -> Result<Vec<NodeId>, Self::Error>;
    /// Documents with changes waiting for dependencies.
    fn waiting(&self) -> Result<Vec<(DocKey, Waiting)>, Self::Error>;
    fn doc(&self, key: &DocKey) -> Result<Option<Vec<u8>>, Self::Error>;
    /// Up to `max_count` entries of `feed`, in order, starting at `from_seq`.
    fn entries(
        &self,
        feed: &FeedId,
        from_seq: u64,
        max_count: usize,
    ) -> Result<Vec<StoredEntry>, Self::Error>;
    /// Applies a batch atomically.
    fn commit(&mut self, batch: WriteBatch) -> Result<(), Self::Error>;
}

/// Why a stored entry's bytes could not be read back.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stored entry {seq} of feed {feed:?} is corrupt: {reason}")]
pub struct CorruptEntry {
    pub feed: FeedId,
    pub seq: u64,
    pub reason: &'static str,
}

impl StoredEntry {
    /// The stored form of an entry's body; origin, scope and seq live in the store's key.
    ///
    /// Layout: flags (bit 0: a signature follows), previous hash (32), document id (16),
    /// signature (64, if flagged), change bytes (the rest).
    pub fn encode_value(&self) -> Vec<u8> {
        let entry = &self.entry;
        let mut out = Vec::with_capacity(1 + 32 + 16 + 64 + entry.change.len());
        out.push(u8::from(self.signature.is_some()));
        out.extend_from_slice(&entry.prev.0);
        out.extend_from_slice(entry.doc.as_bytes());
        if let Some(signature) = &self.signature {
            out.extend_from_slice(&signature.0);
        }
        out.extend_from_slice(&entry.change);
        out
    }

    pub fn decode_value(feed: &FeedId, seq: u64, value: &[u8]) -> Result<Self, CorruptEntry> {
        let corrupt = |reason| CorruptEntry {
            feed: feed.clone(),
            seq,
            reason,
        };
        let (&flags, rest) = value.split_first().ok_or_else(|| corrupt("empty"))?;
        if flags > 1 {
            return Err(corrupt("unknown flags"));
        }
        let signed = flags == 1;
        let fixed = 32 + 16 + if signed { 64 } else { 0 };
        if rest.len() < fixed {
            return Err(corrupt("truncated"));
        }
        let (prev, rest) = rest.split_at(32);
        let (doc, rest) = rest.split_at(16);
        let (signature, change) = if signed {
            rest.split_at(64)
        } else {
            rest.split_at(0)
        };
        let mut prev_bytes = [0u8; 32];
        prev_bytes.copy_from_slice(prev);
        let mut doc_bytes = [0u8; 16];
        doc_bytes.copy_from_slice(doc);
        let signature = signed.then(|| {
            let mut bytes = [0u8; 64];
            bytes.copy_from_slice(signature);
            Signature(bytes)
        });
        Ok(Self {
            entry: Entry {
                origin: feed.origin,
                scope: feed.scope.clone(),
                seq,
                prev: EntryHash(prev_bytes),
                doc: DocId::from_bytes(doc_bytes),
                change: change.to_vec(),
            },
            signature,
        })
    }
}

/// A store in memory, for tests and the simulator. Nothing survives the process, by design.
#[derive(Default, Debug, Clone)]
pub struct MemStore {
    entries: BTreeMap<(FeedId, u64), StoredEntry>,
    heads: BTreeMap<FeedId, Head>,
    docs: BTreeMap<DocKey, Vec<u8>>,
    waiting: BTreeMap<DocKey, Waiting>,
    quarantine: BTreeSet<NodeId>,
}

impl MemStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of documents stored.
    pub fn doc_count(&self) -> usize {
        self.docs.len()
    }
}

impl Store for MemStore {
    type Error = Infallible;

    fn heads(&self) -> Result<Vec<(FeedId, Head)>, Infallible> {
        Ok(self.heads.iter().map(|(f, h)| (f.clone(), *h)).collect())
    }

    fn quarantined(&self) -> Result<Vec<NodeId>, Infallible> {
        Ok(self.quarantine.iter().copied().collect())
    }

    fn waiting(&self) -> Result<Vec<(DocKey, Waiting)>, Infallible> {
        Ok(self
            .waiting
            .iter()
            .map(|(k, w)| (k.clone(), w.clone()))
            .collect())
    }

    fn doc(&self, key: &DocKey) -> Result<Option<Vec<u8>>, Infallible> {
        Ok(self.docs.get(key).cloned())
    }

    fn entries(
        &self,
        feed: &FeedId,
        from_seq: u64,
        max_count: usize,
    ) -> Result<Vec<StoredEntry>, Infallible> {
        let range = (feed.clone(), from_seq)..=(feed.clone(), u64::MAX);
        Ok(self
            .entries
            .range(range)
            .take(max_count)
            .map(|(_, e)| e.clone())
            .collect())
    }

    fn commit(&mut self, batch: WriteBatch) -> Result<(), Infallible> {
        for stored in batch.entries {
            self.entries
                .insert((stored.entry.feed(), stored.entry.seq), stored);
        }
        self.heads.extend(batch.heads);
        self.docs.extend(batch.docs);
        for (key, waiting) in batch.waiting {
            if waiting.is_empty() {
                self.waiting.remove(&key);
            } else {
                self.waiting.insert(key, waiting);
            }
        }
        self.quarantine.extend(batch.quarantine);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Scope;

    #[test]
    fn stored_entries_round_trip_with_and_without_signature() {
        let feed = FeedId {
            origin: NodeId::from_bytes([1; 32]),
            scope: Scope::new("a").unwrap(),
        };
        for signature in [None, Some(Signature([3; 64]))] {
            let stored = StoredEntry {
                entry: Entry {
                    origin: feed.origin,
                    scope: feed.scope.clone(),
                    seq: 4,
                    prev: EntryHash([2; 32]),
                    doc: DocId::from_bytes([5; 16]),
                    change: vec![9; 20],
                },
                signature,
            };
            let bytes = stored.encode_value();
            assert_eq!(StoredEntry::decode_value(&feed, 4, &bytes), Ok(stored));
            assert!(StoredEntry::decode_value(&feed, 4, &bytes[..10]).is_err());
        }
    }
}
