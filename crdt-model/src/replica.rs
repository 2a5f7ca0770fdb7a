//! The replica: documents plus signed feeds, over any [`Store`].
//!
//! A replica turns local edits into entries on its own feeds, verifies and applies runs of
//! entries from peers, and picks the runs a peer lacks. It keeps in memory only the heads of
//! every feed, the origins in quarantine, the documents waiting for dependencies, and a
//! bounded cache of recently used documents; everything else is read from the store on demand.
//!
//! Writes are staged in a [`WriteBatch`] and reach the store at [`Replica::commit`]. If a
//! commit fails the replica refuses all further work ([`ReplicaError::Failed`]): its memory
//! is then ahead of its store, and only a restart from the store is safe.
//!
//! A document edited is stored by appending the changes applied, and saved whole from time to
//! time ([`saving`]). A cached document always equals what its staged or stored form loads to.

mod saving;
mod verified;

pub use self::verified::VerifiedSignatures;

use std::collections::{BTreeMap, BTreeSet, HashMap, btree_map};
use std::num::NonZeroUsize;

use automerge::transaction::{CommitOptions, Transaction};
use automerge::{ActorId, Automerge, ChangeHash};
use lru::LruCache;

use self::saving::{CachedDoc, still_waiting};

use crate::entry::{
    Entry, EntryError, EntryHash, Identity, actor_for, check_change, verify_signature,
};
use crate::ids::{DocKey, FeedId, NodeId};
use crate::store::{Store, StoredEntry, Waiting, WriteBatch};
use crate::vector::{Head, Heads, Vector};
use crate::wire::{MAX_CHANGE_BYTES, Run, RunItem, item_wire_len, run_overhead};

/// Longest run a replica forms when it can cut anywhere, in encoded bytes. Runs are the unit a
/// relayer can forward, so this also bounds the runs every relayer holds.
pub const MAX_RUN_BYTES: usize = 64 << 10;
/// Entries read from the store per lookup while forming runs.
const READ_CHUNK: usize = 256;

/// Why a local write failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError<E> {
    #[error("the edit was refused: {0}")]
    Edit(E),
    #[error("the change is {len} bytes, over the limit of {MAX_CHANGE_BYTES}")]
    ChangeTooLarge { len: usize },
    #[error(transparent)]
    Replica(#[from] ReplicaError),
}

/// Why the replica could not do its work at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplicaError {
    #[error("store failed: {0}")]
    Store(Box<dyn std::error::Error + Send + Sync>),
    #[error("stored document {key} does not load: {reason}")]
    CorruptDoc { key: DocKey, reason: String },
    #[error("an earlier commit failed; the replica must be reopened from its store")]
    Failed,
}

/// Why a peer's entries were refused. Nothing of a refused message is applied.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiveError {
    #[error(transparent)]
    Entry(#[from] EntryError),
    #[error(
        "run of {feed:?} from seq {first_seq} does not link to the held head at seq {held_seq}"
    )]
    BrokenChain {
        feed: FeedId,
        first_seq: u64,
        held_seq: u64,
    },
    #[error("origin {} signed two different entries at seq {seq} of {}: quarantined", .feed.origin, .feed.scope)]
    Fork { feed: FeedId, seq: u64 },
    #[error("change in {key} does not apply: {reason}")]
    BadChange { key: DocKey, reason: String },
    #[error(transparent)]
    Replica(#[from] ReplicaError),
}

/// What a local write produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteReceipt {
    pub feed: FeedId,
    pub seq: u64,
}

/// What applying a peer's message did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Received {
    /// New entries stored.
    pub stored: usize,
    /// Entries already held.
    pub duplicates: usize,
    /// Runs skipped because they did not start right after a held head.
    pub gaps: usize,
    /// Runs skipped because their origin is quarantined.
    pub quarantined: usize,
    /// Our heads now, for every feed the message touched: the reply the peer waits for.
    pub ack: Vector,
}

/// A replica of every document it holds, over the store `S`.
#[derive(Debug)]
pub struct Replica<S: Store> {
    identity: Identity,
    node: NodeId,
    actor: ActorId,
    store: S,
    heads: Heads,
    /// Recently used documents; the store holds all of them.
    cache: LruCache<DocKey, CachedDoc>,
    staged: WriteBatch,
    waiting: BTreeMap<DocKey, Waiting>,
    quarantined: BTreeSet<NodeId>,
    /// Feeds whose head moved since the last [`Replica::take_advanced`], for announcing.
    advanced: BTreeSet<FeedId>,
    /// Signatures other replicas in this process already verified, if shared.
    verified: Option<VerifiedSignatures>,
    failed: bool,
}

impl<S: Store> Replica<S> {
    /// Opens a replica over `store`, keeping at most `cache_docs` documents in memory.
    pub fn open(identity: Identity, store: S, cache_docs: usize) -> Result<Self, ReplicaError> {
        let mut heads = Heads::default();
        for (feed, head) in store.heads().map_err(store_err)? {
            heads.insert(feed, head);
        }
        let quarantined = store
            .quarantined()
            .map_err(store_err)?
            .into_iter()
            .collect();
        let waiting = store.waiting().map_err(store_err)?.into_iter().collect();
        let node = identity.node_id();
        Ok(Self {
            actor: actor_for(&node),
            node,
            identity,
            store,
            heads,
            cache: LruCache::new(NonZeroUsize::new(cache_docs.max(1)).unwrap_or(NonZeroUsize::MIN)),
            staged: WriteBatch::default(),
            waiting,
            quarantined,
            advanced: BTreeSet::new(),
            verified: None,
            failed: false,
        })
    }

    /// Shares a set of verified signatures with other replicas in this process, so an entry
    /// verified by one is not verified again by the next ([`VerifiedSignatures`]).
    pub fn share_verified(&mut self, verified: VerifiedSignatures) {
        self.verified = Some(verified);
    }

    pub fn node_id(&self) -> NodeId {
        self.node
    }

    pub fn heads(&self) -> &Heads {
        &self.heads
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn is_quarantined(&self, origin: &NodeId) -> bool {
        self.quarantined.contains(origin)
    }

    /// Changes held but not yet applied because their dependencies have not arrived.
    pub fn waiting_changes(&self) -> usize {
        self.waiting.values().map(Vec::len).sum()
    }

    pub fn has_staged(&self) -> bool {
        !self.staged.is_empty()
    }

    /// Feeds whose head moved since the last call.
    pub fn take_advanced(&mut self) -> BTreeSet<FeedId> {
        std::mem::take(&mut self.advanced)
    }

    /// Edits a document and records the change on this node's feed for the document's scope.
    ///
    /// `time_s` (seconds since the Unix epoch) becomes the change's timestamp. An edit that
    /// changes nothing records nothing and returns `None`.
    pub fn write<E>(
        &mut self,
        key: &DocKey,
        time_s: i64,
        edit: impl FnOnce(&mut Transaction<'_>) -> Result<(), E>,
    ) -> Result<Option<WriteReceipt>, WriteError<E>> {
        self.check_usable()?;
        let mut cached = self.take_doc(key)?.unwrap_or_default();
        let doc = &mut cached.doc;
        doc.set_actor(self.actor.clone());

        let outcome = doc.transact_with(|_| CommitOptions::default().with_time(time_s), edit);
        let committed = match outcome {
            Ok(success) => success.hash.is_some(),
            Err(failure) => {
                self.cache.put(key.clone(), cached);
                return Err(WriteError::Edit(failure.error));
            }
        };
        if !committed {
            self.cache.put(key.clone(), cached);
            return Ok(None);
        }
        let Some(change) = doc.get_last_local_change() else {
            return Err(ReplicaError::CorruptDoc {
                key: key.clone(),
                reason: "a committed transaction left no local change".into(),
            }
            .into());
        };
        let change = change.raw_bytes().to_vec();
        if change.len() > MAX_CHANGE_BYTES {
            // Dropping `cached` discards the edit: the staged or stored version is still intact.
            return Err(WriteError::ChangeTooLarge { len: change.len() });
        }
        let applied = change.clone();

        let feed = FeedId {
            origin: self.node,
            scope: key.scope.clone(),
        };
        let head = self.heads.get(&feed);
        let entry = Entry {
            origin: self.node,
            scope: key.scope.clone(),
            seq: head.map_or(1, |h| h.seq + 1),
            prev: head.map_or(EntryHash::GENESIS, |h| h.hash),
            doc: key.doc,
            change,
        };
        let hash = entry.hash();
        let seq = entry.seq;
        let signature = self.identity.sign(&hash);
        self.staged.entries.push(StoredEntry {
            entry,
            signature: Some(signature),
        });
        self.set_head(&feed, Head { seq, hash });
        let orphans = self.waiting.contains_key(key);
        self.stage_doc(key, cached, applied, orphans);
        Ok(Some(WriteReceipt { feed, seq }))
    }

    /// A document, loaded from the store if it is not in memory.
    pub fn doc(&mut self, key: &DocKey) -> Result<Option<&Automerge>, ReplicaError> {
        self.check_usable()?;
        if !self.cache.contains(key) {
            match self.load_doc(key)? {
                Some(doc) => {
                    self.cache.put(key.clone(), doc);
                }
                None => return Ok(None),
            }
        }
        Ok(self.cache.get(key).map(|cached| &cached.doc))
    }

    /// Writes everything staged to the store, atomically.
    pub fn commit(&mut self) -> Result<(), ReplicaError> {
        self.check_usable()?;
        if self.staged.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.staged);
        self.store.commit(batch).map_err(|err| {
            self.failed = true;
            store_err(err)
        })
    }

    /// Verifies and applies runs from a peer. Either the whole message is applied, or nothing.
    pub fn receive(&mut self, runs: Vec<Run>) -> Result<Received, ReceiveError> {
        self.check_usable()?;
        let mut received = Received::default();
        let mut verified = Vec::new();
        let mut changes: BTreeMap<DocKey, Vec<automerge::Change>> = BTreeMap::new();
        let mut tentative: HashMap<FeedId, Head> = HashMap::new();
        let mut touched: BTreeSet<FeedId> = BTreeSet::new();
        let mut refused_upto: HashMap<FeedId, u64> = HashMap::new();

        for run in runs {
            let held = tentative
                .get(&run.feed)
                .copied()
                .or_else(|| self.heads.get(&run.feed));
            touched.insert(run.feed.clone());
            if self.quarantined.contains(&run.feed.origin) {
                // Acked as held so the sender stops offering what will never be applied.
                received.quarantined += 1;
                refused_upto.insert(run.feed.clone(), run.last_seq());
                continue;
            }
            let verdict = match self.verify_run(&run, held) {
                Ok(verdict) => verdict,
                Err(err @ ReceiveError::Fork { .. }) => {
                    // The proof stands whatever else the message held: record it.
                    self.quarantined.insert(run.feed.origin);
                    self.staged.quarantine.insert(run.feed.origin);
                    return Err(err);
                }
                Err(err) => return Err(err),
            };
            match verdict {
                Verdict::Duplicate => received.duplicates += run.items.len(),
                Verdict::Gap => received.gaps += 1,
                Verdict::New {
                    entries,
                    parsed,
                    head,
                } => {
                    received.duplicates += run.items.len() - entries.len();
                    tentative.insert(run.feed.clone(), head);
                    for ((entry, _), change) in entries.iter().zip(parsed) {
                        let key = DocKey {
                            scope: entry.scope.clone(),
                            doc: entry.doc,
                        };
                        changes.entry(key).or_default().push(change);
                    }
                    verified.push((run, entries));
                }
            }
        }

        let docs = self.apply_to_docs(changes)?;
        for (run, entries) in verified {
            let last = entries.len() - 1;
            for (index, (entry, hash)) in entries.into_iter().enumerate() {
                let signature = (index == last).then_some(run.signature);
                let head = Head {
                    seq: entry.seq,
                    hash,
                };
                self.staged.entries.push(StoredEntry { entry, signature });
                self.set_head(&run.feed, head);
                received.stored += 1;
            }
        }
        for (key, applied) in docs {
            self.set_waiting(&key, applied.waiting);
            self.stage_doc(&key, applied.cached, applied.bytes, applied.orphans);
        }
        // A feed still at 0 is absent from the ack; the peer reads absence as 0.
        received.ack = touched
            .into_iter()
            .map(|f| {
                let seq = self
                    .heads
                    .seq(&f)
                    .max(refused_upto.get(&f).copied().unwrap_or(0));
                (f, seq)
            })
            .collect();
        Ok(received)
    }

    /// The runs a peer holding `peer` lacks, highest-priority scope first, within
    /// `budget_bytes` of encoded runs (exceeded only when a single run is larger).
    pub fn runs_for(
        &mut self,
        peer: &Vector,
        include: impl Fn(&FeedId) -> bool,
        budget_bytes: usize,
    ) -> Result<Vec<Run>, ReplicaError> {
        self.commit()?;
        let mut feeds: Vec<(&FeedId, &Head, u64)> = self
            .heads
            .ahead_of(peer)
            .filter(|(feed, _, _)| include(feed) && !self.quarantined.contains(&feed.origin))
            .collect();
        // Already in feed order; a stable sort keeps it within each priority.
        feeds.sort_by_key(|(feed, _, _)| feed.scope.priority());

        let mut builder = RoundBuilder::new(budget_bytes);
        for (feed, head, held) in feeds {
            let mut next = held + 1;
            while next <= head.seq && !builder.full() {
                let chunk = self
                    .store
                    .entries(feed, next, READ_CHUNK)
                    .map_err(store_err)?;
                let Some(last) = chunk.last() else { break };
                next = last.entry.seq + 1;
                for stored in chunk.into_iter().filter(|s| s.entry.seq <= head.seq) {
                    builder.push(stored);
                    if builder.full() {
                        break;
                    }
                }
            }
            builder.finish_feed();
            if builder.full() {
                break;
            }
        }
        Ok(builder.runs)
    }

    fn check_usable(&self) -> Result<(), ReplicaError> {
        if self.failed {
            Err(ReplicaError::Failed)
        } else {
            Ok(())
        }
    }

    fn set_head(&mut self, feed: &FeedId, head: Head) {
        self.heads.insert(feed.clone(), head);
        self.staged.heads.insert(feed.clone(), head);
        self.advanced.insert(feed.clone());
    }

    fn set_waiting(&mut self, key: &DocKey, waiting: Waiting) {
        if waiting.is_empty() {
            if self.waiting.remove(key).is_some() {
                self.staged.waiting.insert(key.clone(), Vec::new());
            }
        } else {
            self.waiting.insert(key.clone(), waiting.clone());
            self.staged.waiting.insert(key.clone(), waiting);
        }
    }

    /// Stages the write that stores an edited document, and caches it.
    ///
    /// `applied` holds the bytes of the changes just applied to it; `orphans` says whether
    /// any of its changes waited for dependencies before or after them.
    fn stage_doc(&mut self, key: &DocKey, mut cached: CachedDoc, applied: Vec<u8>, orphans: bool) {
        let write = cached.record(applied, orphans);
        match self.staged.docs.entry(key.clone()) {
            btree_map::Entry::Occupied(mut staged) => staged.get_mut().then(write),
            btree_map::Entry::Vacant(slot) => {
                slot.insert(write);
            }
        }
        self.cache.put(key.clone(), cached);
    }

    /// Takes a document out of the cache (or loads it), for an edit that puts it back.
    fn take_doc(&mut self, key: &DocKey) -> Result<Option<CachedDoc>, ReplicaError> {
        match self.cache.pop(key) {
            Some(cached) => Ok(Some(cached)),
            None => self.load_doc(key),
        }
    }

    /// Loads a document from the staged batch and the store, bypassing the cache.
    fn load_doc(&self, key: &DocKey) -> Result<Option<CachedDoc>, ReplicaError> {
        let staged = self.staged.docs.get(key);
        let stored = match staged {
            // A staged full save replaces whatever the store holds.
            Some(write) if write.saved.is_some() => None,
            _ => self.store.doc(key).map_err(store_err)?,
        };
        let stored = match staged {
            Some(write) => Some(write.applied_to(stored)),
            None => stored,
        };
        stored
            .map(|stored| CachedDoc::load(key, stored))
            .transpose()
    }

    /// Checks a run against the held head of its feed and its origin's signature.
    fn verify_run(&self, run: &Run, held: Option<Head>) -> Result<Verdict, ReceiveError> {
        let held_seq = held.map_or(0, |h| h.seq);
        if run.last_seq() <= held_seq {
            return Ok(Verdict::Duplicate);
        }
        if run.first_seq > held_seq + 1 {
            return Ok(Verdict::Gap);
        }

        let mut hash = run.prev;
        let mut hashes = Vec::with_capacity(run.items.len());
        let mut entries = Vec::new();
        let mut links = run.first_seq == 1 && run.prev == EntryHash::GENESIS
            || held.is_some_and(|h| h.seq + 1 == run.first_seq && h.hash == run.prev);
        for (offset, item) in run.items.iter().enumerate() {
            let seq = run.first_seq + offset as u64;
            let entry = entry_of(run, seq, hash, item);
            hash = entry.hash();
            hashes.push(hash);
            if seq == held_seq {
                links = held.is_some_and(|h| h.hash == hash);
            }
            if seq > held_seq {
                entries.push((entry, hash));
            }
        }

        let signed = match &self.verified {
            Some(verified) => verified.verify(&run.feed, run.last_seq(), &hash, &run.signature),
            None => verify_signature(&run.feed, run.last_seq(), &hash, &run.signature),
        };
        match (links, signed) {
            (true, Ok(())) => {}
            (true, Err(err)) => return Err(err.into()),
            (false, Ok(())) => {
                return Err(ReceiveError::Fork {
                    feed: run.feed.clone(),
                    seq: held_seq,
                });
            }
            (false, Err(_)) => {
                return Err(ReceiveError::BrokenChain {
                    feed: run.feed.clone(),
                    first_seq: run.first_seq,
                    held_seq,
                });
            }
        }
        let parsed = entries
            .iter()
            .map(|(entry, _)| check_change(entry))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Verdict::New {
            entries,
            parsed,
            head: Head {
                seq: run.last_seq(),
                hash,
            },
        })
    }

    /// Applies verified changes to their documents, taken out of the cache; nothing is staged.
    fn apply_to_docs(
        &mut self,
        changes: BTreeMap<DocKey, Vec<automerge::Change>>,
    ) -> Result<Vec<(DocKey, AppliedDoc)>, ReceiveError> {
        // Documents are taken out of the cache rather than cloned (a clone costs the whole
        // document). If a change is refused, the documents taken so far are dropped: the next
        // use reloads them from the staged batch or the store, which still hold their state
        // before this message, so nothing of it is applied.
        let mut docs = Vec::with_capacity(changes.len());
        for (key, changes) in changes {
            let mut cached = self.take_doc(&key)?.unwrap_or_default();
            let held = self.waiting.get(&key);
            let mut waiting: Vec<ChangeHash> = held
                .map(|w| w.iter().map(|h| ChangeHash(*h)).collect())
                .unwrap_or_default();
            let waited = !waiting.is_empty();
            waiting.extend(changes.iter().map(automerge::Change::hash));
            let bytes = changes
                .iter()
                .flat_map(|c| c.raw_bytes())
                .copied()
                .collect();

            cached
                .doc
                .apply_changes(changes)
                .map_err(|err| ReceiveError::BadChange {
                    key: key.clone(),
                    reason: err.to_string(),
                })?;
            let waiting = still_waiting(&cached.doc, waiting);
            let orphans = waited || !waiting.is_empty();
            let applied = AppliedDoc {
                cached,
                waiting,
                bytes,
                orphans,
            };
            docs.push((key, applied));
        }
        Ok(docs)
    }
}

/// A document a message changed, ready to be staged.
struct AppliedDoc {
    cached: CachedDoc,
    /// Its changes still waiting for dependencies.
    waiting: Waiting,
    /// The bytes of the message's changes to it.
    bytes: Vec<u8>,
    /// Whether any change waited, before or after the message.
    orphans: bool,
}

enum Verdict {
    Duplicate,
    Gap,
    New {
        entries: Vec<(Entry, EntryHash)>,
        /// The change of each entry, parsed and checked.
        parsed: Vec<automerge::Change>,
        head: Head,
    },
}

fn entry_of(run: &Run, seq: u64, prev: EntryHash, item: &RunItem) -> Entry {
    Entry {
        origin: run.feed.origin,
        scope: run.feed.scope.clone(),
        seq,
        prev,
        doc: item.doc,
        change: item.change.clone(),
    }
}

fn store_err(err: impl std::error::Error + Send + Sync + 'static) -> ReplicaError {
    ReplicaError::Store(Box::new(err))
}

/// Packs stored entries into runs for one round.
///
/// A run must end at an entry whose signature is held. Runs are cut at [`MAX_RUN_BYTES`] or
/// when the round's budget is reached, at the last signed entry so far; if no entry so far is
/// signed, the run grows to the next signed one (which exists: every head is signed).
struct RoundBuilder {
    budget: usize,
    used: usize,
    runs: Vec<Run>,
    pending: Vec<StoredEntry>,
    pending_bytes: usize,
    last_signed: Option<usize>,
    /// The budget is spent: cut at the next signed entry and stop.
    closing: bool,
    done: bool,
}

impl RoundBuilder {
    fn new(budget: usize) -> Self {
        Self {
            budget,
            used: 0,
            runs: Vec::new(),
            pending: Vec::new(),
            pending_bytes: 0,
            last_signed: None,
            closing: false,
            done: false,
        }
    }

    fn full(&self) -> bool {
        self.done
    }

    fn push(&mut self, stored: StoredEntry) {
        let len = item_wire_len(stored.entry.change.len());
        let over_budget = self.used + self.pending_bytes + len > self.budget;
        let over_run = self.pending_bytes + len > MAX_RUN_BYTES;
        if !self.pending.is_empty() && (over_budget || over_run) {
            if over_budget {
                self.closing = true;
            }
            if let Some(index) = self.last_signed {
                self.cut(index);
                if self.closing {
                    self.done = true;
                    return;
                }
            }
        }
        let signed = stored.signature.is_some();
        self.pending_bytes += len;
        self.pending.push(stored);
        if signed {
            self.last_signed = Some(self.pending.len() - 1);
            if self.closing {
                self.cut(self.pending.len() - 1);
                self.done = true;
            }
        }
    }

    /// Ends the current feed: what is pending up to its last signed entry becomes a run.
    fn finish_feed(&mut self) {
        if let Some(index) = self.last_signed {
            self.cut(index);
        }
        self.pending.clear();
        self.pending_bytes = 0;
        self.last_signed = None;
        if self.used >= self.budget {
            self.done = true;
        }
    }

    fn cut(&mut self, last: usize) {
        let rest = self.pending.split_off(last + 1);
        let entries = std::mem::replace(&mut self.pending, rest);
        self.pending_bytes = self
            .pending
            .iter()
            .map(|s| item_wire_len(s.entry.change.len()))
            .sum();
        self.last_signed = self.pending.iter().rposition(|s| s.signature.is_some());

        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return;
        };
        let Some(signature) = last.signature else {
            return;
        };
        let feed = first.entry.feed();
        let first_seq = first.entry.seq;
        let prev = first.entry.prev;
        let items: Vec<RunItem> = entries
            .into_iter()
            .map(|s| RunItem {
                doc: s.entry.doc,
                change: s.entry.change,
            })
            .collect();
        let bytes: usize = items
            .iter()
            .map(|i| item_wire_len(i.change.len()))
            .sum::<usize>()
            + run_overhead(&feed, first_seq, items.len());
        self.used += bytes;
        self.runs.push(Run {
            feed,
            first_seq,
            prev,
            items,
            signature,
        });
    }
}
