//! When a replica saves a document whole, and when it only appends the changes it applied.
//!
//! Saving a document whole compresses and writes all of it; doing that after every message
//! makes a hot document (a sailing's gate ledger) cost its full size per scan. So the replica
//! appends the bytes of the changes a commit applied to the stored document ([`DocWrite`]
//! without a full save), and saves it whole again, which drops what was appended, when:
//!
//! - the document has no full save yet (it is new to this replica);
//! - changes are waiting for dependencies, before or after the edit: automerge holds those in
//!   its queue, and only a full save with orphans retained records the queue as it is;
//! - [`MAX_APPENDS`] appends were made since the document was loaded or saved whole;
//! - the appended bytes would pass half the full save, or [`MIN_APPENDED_BYTES`] if more.
//!
//! The last two bound what loading the document replays. The byte bound holds across loads;
//! the count starts again at each load, as the store does not keep it.
//!
//! Appending the applied changes' own bytes stores what `Automerge::save_after` would produce
//! for the heads before the edit, without collecting the changes back out of the document.

use automerge::{Automerge, ChangeHash, ReadDoc, SaveOptions};

use super::ReplicaError;
use crate::ids::DocKey;
use crate::store::{DocWrite, StoredDoc};

/// Appends after which a document is saved whole again.
pub const MAX_APPENDS: usize = 64;
/// Appended bytes always allowed before a full save, however small the document.
pub const MIN_APPENDED_BYTES: usize = 4 << 10;

/// A decoded document, and the shape of its stored form.
#[derive(Debug, Default)]
pub(super) struct CachedDoc {
    pub doc: Automerge,
    stored: StoredShape,
}

/// What the stored form of a document holds, for deciding when to save it whole.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct StoredShape {
    /// Length of the full save; 0 when the document is not stored yet.
    saved_bytes: usize,
    appended_bytes: usize,
    /// Appends since the document was loaded or saved whole.
    appends: usize,
}

impl CachedDoc {
    /// Decodes a stored document.
    pub fn load(key: &DocKey, stored: StoredDoc) -> Result<Self, ReplicaError> {
        let shape = StoredShape {
            saved_bytes: stored.saved.len(),
            appended_bytes: stored.appended.len(),
            appends: 0,
        };
        let corrupt = |err: automerge::AutomergeError| ReplicaError::CorruptDoc {
            key: key.clone(),
            reason: err.to_string(),
        };
        let doc = Automerge::load(&stored.into_bytes()).map_err(corrupt)?;
        Ok(Self { doc, stored: shape })
    }

    /// The write that stores the document after `applied` (the bytes of the changes just
    /// applied to it) took effect. `orphans` says whether changes waited for dependencies
    /// before or after them.
    pub fn record(&mut self, applied: Vec<u8>, orphans: bool) -> DocWrite {
        let appended_bytes = self.stored.appended_bytes + applied.len();
        let allowed_bytes = MIN_APPENDED_BYTES.max(self.stored.saved_bytes / 2);
        let append = self.stored.saved_bytes > 0
            && !orphans
            && self.stored.appends < MAX_APPENDS
            && appended_bytes <= allowed_bytes;
        if append {
            self.stored.appended_bytes = appended_bytes;
            self.stored.appends += 1;
            return DocWrite {
                saved: None,
                appended: applied,
            };
        }

        let options = SaveOptions {
            deflate: true,
            retain_orphans: true,
        };
        let saved = self.doc.save_with_options(options);
        self.stored = StoredShape {
            saved_bytes: saved.len(),
            ..StoredShape::default()
        };
        DocWrite {
            saved: Some(saved),
            appended: Vec::new(),
        }
    }
}

/// Which of `hashes` the document still holds in its queue, waiting for dependencies.
pub(super) fn still_waiting(doc: &Automerge, hashes: Vec<ChangeHash>) -> Vec<[u8; 32]> {
    // Missing dependencies are traced from queued changes only, so none means an empty
    // queue: the common case, answered without looking any change up.
    if doc.get_missing_deps(&[]).is_empty() {
        return Vec::new();
    }
    hashes
        .into_iter()
        .filter(|hash| doc.get_change_by_hash(hash).is_none())
        .map(|hash| hash.0)
        .collect()
}

#[cfg(test)]
mod tests {
    use automerge::ROOT;
    use automerge::transaction::Transactable;

    use super::*;
    use crate::ids::{DocId, Scope};
    use crate::store::{MemStore, Store};
    use crate::{FeedId, Identity, Replica, Vector};

    fn key(n: u8) -> DocKey {
        DocKey {
            scope: Scope::new("tickets").unwrap(),
            doc: DocId::from_bytes([n; 16]),
        }
    }

    fn replica(seed: u8, cache_docs: usize) -> Replica<MemStore> {
        Replica::open(
            Identity::from_secret_bytes([seed; 32]),
            MemStore::new(),
            cache_docs,
        )
        .unwrap()
    }

    /// One edit: a new map entry, so the document grows with every change.
    fn edit(replica: &mut Replica<MemStore>, key: &DocKey, n: i64) {
        replica
            .write(key, 1, |tx| tx.put(ROOT, format!("scan-{n}"), n))
            .unwrap()
            .unwrap();
        replica.commit().unwrap();
    }

    fn stored(replica: &Replica<MemStore>, key: &DocKey) -> StoredDoc {
        replica.store().doc(key).unwrap().unwrap()
    }

    fn loaded(replica: &Replica<MemStore>, key: &DocKey) -> Automerge {
        Automerge::load(&stored(replica, key).into_bytes()).unwrap()
    }

    /// The document rebuilt from the change of every entry of `replica`'s own feed.
    fn rebuilt_from_feed(replica: &Replica<MemStore>, key: &DocKey) -> Automerge {
        let feed = FeedId {
            origin: replica.node_id(),
            scope: key.scope.clone(),
        };
        let entries = replica.store().entries(&feed, 1, usize::MAX).unwrap();
        let mut doc = Automerge::new();
        for stored in entries.into_iter().filter(|s| s.entry.doc == key.doc) {
            let change = automerge::Change::from_bytes(stored.entry.change).unwrap();
            doc.apply_changes([change]).unwrap();
        }
        doc
    }

    #[test]
    fn a_document_appended_to_over_many_edits_loads_the_same_as_one_saved_whole() {
        // A cache of one document: every other edit reloads from the store what was appended.
        let mut replica = replica(1, 1);
        let (hot, other) = (key(1), key(2));
        let mut appended_seen = false;
        for n in 0..300 {
            edit(&mut replica, &hot, n);
            if n % 3 == 0 {
                edit(&mut replica, &other, n);
            }
            appended_seen |= !stored(&replica, &hot).appended.is_empty();
        }
        assert!(appended_seen, "no edit was appended");

        let from_store = loaded(&replica, &hot);
        let reference = rebuilt_from_feed(&replica, &hot);
        assert_eq!(from_store.get_heads(), reference.get_heads());
        assert_eq!(from_store.save(), reference.save());
        assert_eq!(from_store.keys(ROOT).count(), 300);
        let in_memory = replica.doc(&hot).unwrap().unwrap();
        assert_eq!(in_memory.get_heads(), reference.get_heads());
        let last = from_store.get(ROOT, "scan-299").unwrap();
        assert_eq!(last.and_then(|(value, _)| value.as_i64()), Some(299));
    }

    #[test]
    fn appends_are_compacted_into_a_full_save() {
        let mut replica = replica(1, 4);
        let hot = key(1);
        let mut compactions = 0;
        let mut previous = StoredDoc::default();
        for n in 0..400 {
            edit(&mut replica, &hot, n);
            let now = stored(&replica, &hot);
            let allowed = MIN_APPENDED_BYTES.max(now.saved.len() / 2);
            assert!(now.appended.len() <= allowed, "edit {n}: tail not bounded");
            if !previous.appended.is_empty() && now.appended.is_empty() {
                compactions += 1;
            }
            previous = now;
        }
        assert!(
            compactions >= 400 / (MAX_APPENDS + 1),
            "{compactions} compactions"
        );
    }

    #[test]
    fn a_full_save_follows_the_last_allowed_append() {
        let mut cached = CachedDoc::default();
        let write = cached.record(vec![1], false);
        assert!(write.saved.is_some(), "a new document is saved whole");
        for n in 0..MAX_APPENDS {
            let write = cached.record(vec![2], false);
            assert_eq!(write.saved, None, "append {n}");
            assert_eq!(write.appended, vec![2]);
        }
        assert!(cached.record(vec![3], false).saved.is_some());
        assert!(
            cached.record(vec![4], true).saved.is_some(),
            "orphans force a full save"
        );
        let too_long = vec![5; MIN_APPENDED_BYTES + 1];
        assert!(cached.record(too_long, false).saved.is_some());
    }

    #[test]
    fn a_document_with_changes_waiting_for_dependencies_round_trips() {
        let (mut first, mut second, mut third) = (replica(1, 4), replica(2, 4), replica(3, 1));
        let doc = key(1);
        let (first_id, second_id) = (first.node_id(), second.node_id());

        // `second` builds on `first`'s change; `third` hears from `second` only.
        edit(&mut first, &doc, 0);
        second
            .receive(first.runs_for(&Vector::new(), |_| true, 1 << 20).unwrap())
            .unwrap();
        second.commit().unwrap();
        for n in 1..20 {
            edit(&mut second, &doc, n);
        }
        let from_second = second
            .runs_for(&Vector::new(), |f| f.origin == second_id, 1 << 20)
            .unwrap();
        third.receive(from_second).unwrap();
        third.commit().unwrap();
        assert_eq!(third.waiting_changes(), 19);

        // Edits by `third` itself while changes wait, each reloaded from the store.
        for n in 20..30 {
            edit(&mut third, &doc, n);
            edit(&mut third, &key(2), n);
        }
        let held = loaded(&third, &doc);
        assert_eq!(
            held.get_missing_deps(&[]).len(),
            1,
            "the queue was not stored"
        );

        // Reopened from its store, `third` applies everything once the dependency arrives.
        let store = third.store().clone();
        let mut third = Replica::open(Identity::from_secret_bytes([3; 32]), store, 1).unwrap();
        let from_first = first
            .runs_for(&Vector::new(), |f| f.origin == first_id, 1 << 20)
            .unwrap();
        third.receive(from_first).unwrap();
        third.commit().unwrap();
        assert_eq!(third.waiting_changes(), 0);
        for n in 30..40 {
            edit(&mut third, &doc, n);
        }
        let from_store = loaded(&third, &doc);
        assert!(from_store.get_missing_deps(&[]).is_empty());
        assert_eq!(from_store.keys(ROOT).count(), 40);
        assert_eq!(
            from_store.get_heads(),
            third.doc(&doc).unwrap().unwrap().get_heads()
        );
    }
}
