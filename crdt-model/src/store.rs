//! The narrow storage interface the replica needs, the batch it commits, and [`MemStore`].
//!
//! A replica reads its store on demand (heads and quarantine at open, documents and entries as
//! needed) and writes only through [`Store::commit`], one [`WriteBatch`] at a time. A store
//! must apply a batch atomically: after a crash, all of it or none of it is there. Durability
//! (when a committed batch reaches the disk) is the store owner's business, not the replica's.
//!
//! A document is stored in two parts ([`StoredDoc`]): its last full save, and the changes
//! applied since, appended one commit at a time ([`DocWrite`]). A hot document then costs a
//! commit the bytes of its new changes, not a re-save of the whole document; the replica saves
//! it whole again when the appended part grows (see `replica::saving`).

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

/// A document as stored: its last full save, then the changes applied since.
///
/// The two concatenated ([`StoredDoc::into_bytes`]) are what `Automerge::load` reads: a saved
/// document may be followed by any number of change chunks.
#[derive(Clone, Default, PartialEq, Eq, Debug)]
pub struct StoredDoc {
    /// A full automerge save, with the changes still waiting for dependencies at the time.
    pub saved: Vec<u8>,
    /// Automerge changes applied after `saved`, concatenated.
    pub appended: Vec<u8>,
}

impl StoredDoc {
    /// The bytes `Automerge::load` reads.
    pub fn into_bytes(self) -> Vec<u8> {
        let mut bytes = self.saved;
        bytes.extend_from_slice(&self.appended);
        bytes
    }
}

/// What one commit does to one stored document.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct DocWrite {
    /// A full save replacing the stored document and everything appended to it, if any.
    pub saved: Option<Vec<u8>>,
    /// Changes to append: after `saved`, or after what is stored when `saved` is `None`.
    pub appended: Vec<u8>,
}

impl DocWrite {
    /// Folds a later write of the same document into this one.
    pub fn then(&mut self, later: DocWrite) {
        if later.saved.is_some() {
            *self = later;
        } else {
            self.appended.extend_from_slice(&later.appended);
        }
    }

    /// What is stored after this write is applied to `stored`.
    pub fn applied_to(&self, stored: Option<StoredDoc>) -> StoredDoc {
        let mut doc = match &self.saved {
            Some(saved) => StoredDoc {
                saved: saved.clone(),
                appended: Vec::new(),
            },
            None => stored.unwrap_or_default(),
        };
        doc.appended.extend_from_slice(&self.appended);
        doc
    }
}

/// Everything one commit writes.
#[derive(Default, Debug)]
pub struct WriteBatch {
    pub entries: Vec<StoredEntry>,
    pub heads: BTreeMap<FeedId, Head>,
    /// Documents saved whole or appended to.
    pub docs: BTreeMap<DocKey, DocWrite>,
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
    fn doc(&self, key: &DocKey) -> Result<Option<StoredDoc>, Self::Error>;
    /// Up to `max_count` entries of `feed`, in order, starting at `from_seq`.
    fn entries(
        &self,
        feed: &FeedId,
        from_seq: u64,
        max_count: usize,
    ) -> Result<Vec<StoredEntry>, Self::Error>;
    /// Applies a batch atomically. A [`DocWrite`] without a full save extends what is stored.
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
    docs: BTreeMap<DocKey, StoredDoc>,
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

    fn doc(&self, key: &DocKey) -> Result<Option<StoredDoc>, Infallible> {
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
        for (key, write) in batch.docs {
            let stored = write.applied_to(self.docs.remove(&key));
            self.docs.insert(key, stored);
        }
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

    fn append(bytes: &[u8]) -> DocWrite {
        DocWrite {
            saved: None,
            appended: bytes.to_vec(),
        }
    }

    fn save(saved: &[u8], appended: &[u8]) -> DocWrite {
        DocWrite {
            saved: Some(saved.to_vec()),
            appended: appended.to_vec(),
        }
    }

    #[test]
    fn appends_extend_the_stored_document_and_a_full_save_replaces_it() {
        let stored = StoredDoc {
            saved: b"S".to_vec(),
            appended: b"a".to_vec(),
        };
        let appended = append(b"b").applied_to(Some(stored.clone()));
        assert_eq!(appended.into_bytes(), b"Sab");
        let replaced = save(b"T", b"c").applied_to(Some(stored));
        assert_eq!(replaced.clone().into_bytes(), b"Tc");
        assert_eq!(replaced.appended, b"c");
    }

    #[test]
    fn writes_folded_in_a_batch_equal_writes_applied_one_by_one() {
        let writes = [append(b"a"), save(b"S", b""), append(b"b"), append(b"c")];
        let mut one_by_one = Some(StoredDoc {
            saved: b"R".to_vec(),
            appended: b"r".to_vec(),
        });
        let mut folded: Option<DocWrite> = None;
        for write in writes {
            one_by_one = Some(write.applied_to(one_by_one));
            match &mut folded {
                Some(f) => f.then(write),
                None => folded = Some(write),
            }
        }
        let folded = folded.unwrap().applied_to(Some(StoredDoc::default()));
        assert_eq!(Some(folded), one_by_one);
        assert_eq!(one_by_one.unwrap().into_bytes(), b"Sbc");
    }

    #[test]
    fn the_memory_store_appends_across_commits() {
        let key = DocKey {
            scope: Scope::new("a").unwrap(),
            doc: DocId::from_bytes([1; 16]),
        };
        let mut store = MemStore::new();
        for write in [save(b"S", b"a"), append(b"b"), append(b"c")] {
            let mut batch = WriteBatch::default();
            batch.docs.insert(key.clone(), write);
            store.commit(batch).unwrap();
        }
        let stored = store.doc(&key).unwrap().unwrap();
        assert_eq!(
            (stored.saved.as_slice(), stored.appended.as_slice()),
            (&b"S"[..], &b"abc"[..])
        );
    }
}
