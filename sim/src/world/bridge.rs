//! Records written through a box's replica.

use automerge::transaction::CommitOptions;
use automerge::{AutoCommit, ReadDoc as _};
use crdt_model::entry::{Entry, EntryHash, actor_for};
use crdt_model::wire::{Run, RunItem};
use crdt_model::{DocKey, FeedId};

use super::{SECOND, World};
use crate::SimError;

impl World {
    /// Runs a records operation on box `b`'s copy of document `key`, and records the
    /// change it made on the box's feed.
    ///
    /// The records API edits an [`AutoCommit`] while [`crdt_model::Replica::write`] hands
    /// out a transaction, so the change is made on a copy of the replica's document (with
    /// the box's actor) and handed to the replica as a signed run of the box's own feed: the
    /// entries are those `Replica::write` would make, and they pass the same verification as
    /// any peer's. Returns `Ok(Err(reason))` when the records refuse the operation (a rule,
    /// not a fault); an operation that changes nothing records no entry.
    pub fn edit<T, E: std::fmt::Display>(
        &mut self,
        b: usize,
        key: &DocKey,
        op: impl FnOnce(&mut AutoCommit) -> Result<T, E>,
    ) -> Result<Result<T, String>, SimError> {
        let time_s = self.scenario.start_unix_s + (self.now / SECOND) as i64;
        let mut doc = self.working_copy(b, key)?.unwrap_or_default();
        let bx = &mut self.boxes[b];
        doc.set_actor(actor_for(&bx.node));
        let before = doc.get_heads();
        let outcome = op(&mut doc);
        let value = match outcome {
            Ok(value) => value,
            Err(err) => {
                // What the refused operation wrote is dropped; the copy stays the replica's.
                doc.rollback();
                bx.working.put(key.clone(), doc);
                return Ok(Err(err.to_string()));
            }
        };
        doc.commit_with(CommitOptions::default().with_time(time_s));
        let changes: Vec<Vec<u8>> = doc
            .get_changes(&before)
            .iter()
            .map(|c| c.raw_bytes().to_vec())
            .collect();
        // From here the copy holds exactly what the replica will: kept for the next edit.
        bx.working.put(key.clone(), doc);
        if changes.is_empty() {
            return Ok(Ok(value));
        }

        let feed = FeedId {
            origin: bx.node,
            scope: key.scope.clone(),
        };
        let head = bx.replica.heads().get(&feed);
        let first_seq = head.map_or(1, |h| h.seq + 1);
        let first_prev = head.map_or(EntryHash::GENESIS, |h| h.hash);
        let mut prev = first_prev;
        let mut items = Vec::new();
        for (offset, change) in changes.into_iter().enumerate() {
            let entry = Entry {
                origin: bx.node,
                scope: key.scope.clone(),
                seq: first_seq + offset as u64,
                prev,
                doc: key.doc,
                change,
            };
            prev = entry.hash();
            items.push(RunItem {
                doc: key.doc,
                change: entry.change,
            });
        }
        let count = items.len();
        let signature = bx.identity.sign(&prev);
        let run = Run {
            feed: feed.clone(),
            first_seq,
            prev: first_prev,
            items,
            signature,
        };
        let received = bx
            .replica
            .receive(vec![run])
            .map_err(|e| SimError::Internal(format!("own write refused at {}: {e}", bx.name)))?;
        bx.replica.commit()?;
        if received.stored != count {
            return Err(SimError::Internal(format!(
                "own write at {} stored {} of {count} entries",
                bx.name, received.stored
            )));
        }

        // Committed: acknowledged from here on.
        let now = self.now;
        let times = self.writes.entry(feed.clone()).or_default();
        times.extend(std::iter::repeat_n(now, count));
        self.metrics.on_write(&key.scope, count);
        self.announce(b)?;
        Ok(Ok(value))
    }

    /// A copy of box `b`'s document, for reading records.
    pub fn read_doc(&mut self, b: usize, key: &DocKey) -> Result<Option<AutoCommit>, SimError> {
        let copy = self.working_copy(b, key)?;
        if let Some(copy) = &copy {
            self.boxes[b].working.put(key.clone(), copy.clone());
        }
        Ok(copy)
    }

    /// Box `b`'s working copy of `key`, taken out of its cache and brought up to the
    /// replica's document; `None` if the replica does not hold the document.
    ///
    /// A copy is updated with the changes the replica gained since, which costs what those
    /// changes cost; it is rebuilt from a save only when it is new or holds a change the
    /// replica does not (which a restart from the store could cause).
    fn working_copy(&mut self, b: usize, key: &DocKey) -> Result<Option<AutoCommit>, SimError> {
        let bx = &mut self.boxes[b];
        let cached = bx.working.pop(key);
        let Some(saved) = bx.replica.doc(key)? else {
            return Ok(None);
        };
        let reload = |saved: &automerge::Automerge| {
            AutoCommit::load(&saved.save())
                .map_err(|e| SimError::Internal(format!("reloading {key}: {e}")))
        };
        let Some(mut copy) = cached else {
            return reload(saved).map(Some);
        };
        let heads = copy.get_heads();
        if !heads.iter().all(|h| saved.get_change_by_hash(h).is_some()) {
            return reload(saved).map(Some);
        }
        let missing = saved.get_changes(&heads);
        if !missing.is_empty() {
            copy.apply_changes(missing)
                .map_err(|e| SimError::Internal(format!("updating {key}: {e}")))?;
        }
        Ok(Some(copy))
    }
}
