//! The replica's own thread: every read, write and session step goes through it, in order.
//!
//! One thread owns the [`Replica`] and every [`Session`]; async tasks (HTTP handlers,
//! connections) talk to it through a [`CoreHandle`]. The thread takes commands in batches:
//! everything queued when it wakes, up to `group_commit_max_writes`. A batch is committed to
//! sled as one atomic write and, if it holds a local write, flushed (fsync) once: that is the
//! group commit. Replies and outgoing frames wait until then, so a write is acknowledged only
//! once durable, and no peer ever receives an entry of ours that a crash could still take
//! back (which would fork our feed).
//!
//! A failed commit or flush stops all writes for good ([`CoreError::StoreFailed`]): the box
//! keeps answering reads and reports itself unhealthy until an operator restarts it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use crdt_model::json::{JsonError, set_fields, to_json};
use crdt_model::replica::WriteError;
use crdt_model::session::{Session, SessionConfig, SessionError, SessionStats};
use crdt_model::wire::Message;
use crdt_model::{DocKey, NodeId, Replica};
use serde::Serialize;
use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, info, warn};

use crate::store::SledStore;

/// A session younger than this is kept when a second connection from the same peer races it
/// and the tie-break favours the first; an older one is presumed stale and replaced.
const RACE_WINDOW: Duration = Duration::from_secs(2);

pub type SessionId = u64;

/// Why the core could not do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CoreError {
    #[error("invalid document body: {0}")]
    Json(#[from] JsonError),
    #[error("change too large: {len} bytes")]
    ChangeTooLarge { len: usize },
    #[error("the store failed and the box no longer accepts writes; restart it")]
    StoreFailed,
    #[error("replica error: {0}")]
    Replica(String),
    #[error("the box is shutting down")]
    ShuttingDown,
}

/// What a durable write did.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PutOutcome {
    /// Sequence number of the new entry on this box's feed; `None` if nothing changed.
    pub seq: Option<u64>,
}

/// Why a connection was not given a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OpenRefused {
    #[error("already in session with this peer")]
    AlreadyConnected,
    #[error("the box is shutting down")]
    ShuttingDown,
}

/// The box's sync state, as `/v1/status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub node_id: String,
    pub healthy: bool,
    pub feeds: usize,
    pub waiting_changes: usize,
    pub last_sync: Option<DateTime<Utc>>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub peers: Vec<PeerStatus>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PeerStatus {
    pub node_id: String,
    pub configured: bool,
    pub connected: bool,
    pub last_sync: Option<DateTime<Utc>>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub entries_to_send: u64,
    pub entries_to_receive: u64,
    pub last_error: Option<String>,
}

enum Command {
    Put {
        key: DocKey,
        fields: Map<String, Value>,
        reply: oneshot::Sender<Result<PutOutcome, CoreError>>,
    },
    Get {
        key: DocKey,
        reply: oneshot::Sender<Result<Option<Value>, CoreError>>,
    },
    Open {
        peer: NodeId,
        dialed: bool,
        outbox: mpsc::UnboundedSender<Vec<u8>>,
        reply: oneshot::Sender<Result<SessionId, OpenRefused>>,
    },
    Frame {
        id: SessionId,
        bytes: Vec<u8>,
    },
    Closed {
        id: SessionId,
        reason: String,
    },
    Connected {
        peer: NodeId,
        reply: oneshot::Sender<bool>,
    },
    Status {
        reply: oneshot::Sender<Status>,
    },
}

/// The async side's way to the core thread. Cheap to clone.
#[derive(Clone, Debug)]
pub struct CoreHandle {
    tx: mpsc::Sender<Command>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Command")
    }
}

impl CoreHandle {
    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Option<T> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(make(reply)).await.ok()?;
        rx.await.ok()
    }

    /// Sets top-level fields of a document; returns once the change is durable.
    pub async fn put(
        &self,
        key: DocKey,
        fields: Map<String, Value>,
    ) -> Result<PutOutcome, CoreError> {
        self.ask(|reply| Command::Put { key, fields, reply })
            .await
            .unwrap_or(Err(CoreError::ShuttingDown))
    }

    pub async fn get(&self, key: DocKey) -> Result<Option<Value>, CoreError> {
        self.ask(|reply| Command::Get { key, reply })
            .await
            .unwrap_or(Err(CoreError::ShuttingDown))
    }

    pub async fn status(&self) -> Option<Status> {
        self.ask(|reply| Command::Status { reply }).await
    }

    pub async fn is_connected(&self, peer: NodeId) -> bool {
        self.ask(|reply| Command::Connected { peer, reply })
            .await
            .unwrap_or(false)
    }

    /// Registers a connection to `peer`; its frames to send arrive on `outbox`, starting
    /// with the Hello. Dropping of the outbox's sender by the core means: close.
    pub async fn open(
        &self,
        peer: NodeId,
        dialed: bool,
        outbox: mpsc::UnboundedSender<Vec<u8>>,
    ) -> Result<SessionId, OpenRefused> {
        self.ask(|reply| Command::Open {
            peer,
            dialed,
            outbox,
            reply,
        })
        .await
        .unwrap_or(Err(OpenRefused::ShuttingDown))
    }

    pub async fn frame(&self, id: SessionId, bytes: Vec<u8>) {
        let _ = self.tx.send(Command::Frame { id, bytes }).await;
    }

    pub async fn closed(&self, id: SessionId, reason: String) {
        let _ = self.tx.send(Command::Closed { id, reason }).await;
    }
}

#[derive(Debug)]
pub struct CoreConfig {
    pub session: SessionConfig,
    pub max_batch: usize,
    pub configured_peers: Vec<NodeId>,
}

/// Starts the core thread. It ends when every handle is dropped.
pub fn spawn(
    replica: Replica<SledStore>,
    store: SledStore,
    config: CoreConfig,
) -> std::io::Result<(CoreHandle, std::thread::JoinHandle<()>)> {
    let (tx, rx) = mpsc::channel(8192);
    let mut peers = BTreeMap::new();
    for peer in &config.configured_peers {
        peers.insert(
            *peer,
            PeerRecord {
                configured: true,
                ..PeerRecord::default()
            },
        );
    }
    let core = Core {
        node: replica.node_id(),
        replica,
        store,
        session_config: config.session,
        max_batch: config.max_batch,
        sessions: BTreeMap::new(),
        peers,
        next_id: 1,
        failed: false,
        bytes_in: 0,
        bytes_out: 0,
    };
    let thread = std::thread::Builder::new()
        .name("culao-core".into())
        .spawn(move || core.run(rx))?;
    Ok((CoreHandle { tx }, thread))
}

struct Slot {
    session: Session,
    peer: NodeId,
    dialed: bool,
    outbox: mpsc::UnboundedSender<Vec<u8>>,
    opened: Instant,
}

/// What the box remembers of a peer across sessions.
#[derive(Default)]
struct PeerRecord {
    configured: bool,
    last_sync: Option<DateTime<Utc>>,
    /// Totals of ended sessions; the live session's counts are added when shown.
    bytes_in: u64,
    bytes_out: u64,
    last_error: Option<String>,
}

/// Work a batch owes once it is durable.
enum Deferred {
    Put(
        oneshot::Sender<Result<PutOutcome, CoreError>>,
        Result<PutOutcome, CoreError>,
    ),
    Get(
        oneshot::Sender<Result<Option<Value>, CoreError>>,
        Result<Option<Value>, CoreError>,
    ),
    Frames(SessionId, Vec<Vec<u8>>),
}

struct Core {
    node: NodeId,
    replica: Replica<SledStore>,
    /// The same store as the replica's, kept for flushing.
    store: SledStore,
    session_config: SessionConfig,
    max_batch: usize,
    sessions: BTreeMap<SessionId, Slot>,
    peers: BTreeMap<NodeId, PeerRecord>,
    next_id: SessionId,
    /// A commit or flush failed: writes are refused until restart.
    failed: bool,
    bytes_in: u64,
    bytes_out: u64,
}

impl Core {
    fn run(mut self, mut rx: mpsc::Receiver<Command>) {
        let mut batch = Vec::with_capacity(self.max_batch);
        while let Some(first) = rx.blocking_recv() {
            batch.push(first);
            while batch.len() < self.max_batch {
                match rx.try_recv() {
                    Ok(command) => batch.push(command),
                    Err(_) => break,
                }
            }
            self.run_batch(&mut batch);
        }
        if let Err(err) = self
            .replica
            .commit()
            .map_err(|e| e.to_string())
            .and_then(|()| self.store.flush().map(|_| ()).map_err(|e| e.to_string()))
        {
            error!(cause = %err, "final flush failed");
        }
        info!("replica thread stopped");
    }

    fn run_batch(&mut self, batch: &mut Vec<Command>) {
        let mut deferred = Vec::new();
        let mut local_writes = 0usize;
        for command in batch.drain(..) {
            if matches!(command, Command::Put { .. }) {
                local_writes += 1;
            }
            self.handle(command, &mut deferred);
        }

        let durable = self.make_durable(local_writes > 0);
        self.announce(&mut deferred);
        for item in deferred {
            match item {
                Deferred::Put(reply, result) => {
                    let result = if durable {
                        result
                    } else {
                        Err(CoreError::StoreFailed)
                    };
                    let _ = reply.send(result);
                }
                Deferred::Get(reply, result) => {
                    let _ = reply.send(result);
                }
                Deferred::Frames(id, frames) if durable => self.send(id, frames),
                Deferred::Frames(..) => {}
            }
        }
        if !durable {
            let ids: Vec<SessionId> = self.sessions.keys().copied().collect();
            for id in ids {
                self.end(id, "store failed".into());
            }
        }
    }

    /// Commits the batch; flushes it if it holds local writes. False if anything failed.
    fn make_durable(&mut self, flush: bool) -> bool {
        if self.failed {
            return false;
        }
        if let Err(err) = self.replica.commit() {
            error!(cause = %err, "commit failed; refusing writes until restart");
            self.failed = true;
            return false;
        }
        if let Err(err) = flush.then(|| self.store.flush()).transpose() {
            error!(cause = %err, "flush failed; refusing writes until restart");
            self.failed = true;
            return false;
        }
        true
    }

    fn handle(&mut self, command: Command, deferred: &mut Vec<Deferred>) {
        match command {
            Command::Put { key, fields, reply } => {
                let result = self.put(&key, &fields);
                deferred.push(Deferred::Put(reply, result));
            }
            Command::Get { key, reply } => {
                let result = match self.replica.doc(&key) {
                    Ok(doc) => Ok(doc.map(to_json)),
                    Err(err) => Err(CoreError::Replica(err.to_string())),
                };
                deferred.push(Deferred::Get(reply, result));
            }
            Command::Open {
                peer,
                dialed,
                outbox,
                reply,
            } => {
                let result = self.open(peer, dialed, outbox, deferred);
                let _ = reply.send(result);
            }
            Command::Frame { id, bytes } => self.frame(id, &bytes, deferred),
            Command::Closed { id, reason } => {
                if self.sessions.contains_key(&id) {
                    self.end(id, reason);
                }
            }
            Command::Connected { peer, reply } => {
                let _ = reply.send(self.sessions.values().any(|s| s.peer == peer));
            }
            Command::Status { reply } => {
                let _ = reply.send(self.status());
            }
        }
    }

    fn put(&mut self, key: &DocKey, fields: &Map<String, Value>) -> Result<PutOutcome, CoreError> {
        if self.failed {
            return Err(CoreError::StoreFailed);
        }
        let now = Utc::now().timestamp();
        match self.replica.write(key, now, |tx| set_fields(tx, fields)) {
            Ok(receipt) => {
                if let Some(receipt) = &receipt {
                    debug!(doc = %key.doc.short(), scope = %key.scope, seq = receipt.seq, "local write");
                }
                Ok(PutOutcome {
                    seq: receipt.map(|r| r.seq),
                })
            }
            Err(WriteError::Edit(err)) => Err(CoreError::Json(err)),
            Err(WriteError::ChangeTooLarge { len }) => Err(CoreError::ChangeTooLarge { len }),
            Err(err) => Err(CoreError::Replica(err.to_string())),
        }
    }

    fn open(
        &mut self,
        peer: NodeId,
        dialed: bool,
        outbox: mpsc::UnboundedSender<Vec<u8>>,
        deferred: &mut Vec<Deferred>,
    ) -> Result<SessionId, OpenRefused> {
        if let Some((&old, slot)) = self.sessions.iter().find(|(_, s)| s.peer == peer) {
            // Both ends apply the same rule, so a race of two dials settles on one connection.
            let preferred_dialed = self.node < peer;
            let keep_old = slot.dialed == preferred_dialed
                && dialed != preferred_dialed
                && slot.opened.elapsed() < RACE_WINDOW;
            if keep_old {
                return Err(OpenRefused::AlreadyConnected);
            }
            self.end(old, "replaced by a newer connection".into());
        }

        let id = self.next_id;
        self.next_id += 1;
        let mut session = Session::new(peer, self.session_config.clone());
        let hello = session.start(&self.replica);
        let frames = session.encode(vec![hello]);
        self.sessions.insert(
            id,
            Slot {
                session,
                peer,
                dialed,
                outbox,
                opened: Instant::now(),
            },
        );
        self.peers.entry(peer).or_default();
        debug!(peer = %peer.short(), session = id, dialed, "session opened");
        deferred.push(Deferred::Frames(id, frames));
        Ok(id)
    }

    fn frame(&mut self, id: SessionId, bytes: &[u8], deferred: &mut Vec<Deferred>) {
        let Some(slot) = self.sessions.get_mut(&id) else {
            return;
        };
        self.bytes_in += bytes.len() as u64;
        match slot.session.on_frame(&mut self.replica, bytes) {
            Ok(replies) => {
                if slot.session.in_sync(&self.replica) {
                    let record = self.peers.entry(slot.peer).or_default();
                    record.last_sync = Some(Utc::now());
                }
                if !replies.is_empty() {
                    deferred.push(Deferred::Frames(id, replies));
                }
            }
            Err(err) => {
                warn!(peer = %slot.peer.short(), session = id, cause = %err, "session refused");
                if !matches!(err, SessionError::RefusedByPeer(_)) {
                    let refuse = Message::Refuse {
                        reason: err.to_string(),
                    };
                    for frame in slot.session.encode(vec![refuse]) {
                        let _ = slot.outbox.send(frame);
                    }
                }
                self.end(id, err.to_string());
            }
        }
    }

    /// Tells every session that heads moved; records who is in sync.
    fn announce(&mut self, deferred: &mut Vec<Deferred>) {
        let advanced = self.replica.take_advanced();
        let ids: Vec<SessionId> = self.sessions.keys().copied().collect();
        for id in ids {
            let Some(slot) = self.sessions.get_mut(&id) else {
                continue;
            };
            if !advanced.is_empty() {
                match slot.session.on_local_change(&mut self.replica, &advanced) {
                    Ok(messages) if !messages.is_empty() => {
                        deferred.push(Deferred::Frames(id, slot.session.encode(messages)));
                    }
                    Ok(_) => {}
                    Err(err) => {
                        warn!(peer = %slot.peer.short(), cause = %err, "session failed");
                        self.end(id, err.to_string());
                        continue;
                    }
                }
            }
            if slot.session.in_sync(&self.replica) {
                self.peers.entry(slot.peer).or_default().last_sync = Some(Utc::now());
            }
        }
        // Pumping may have read from the store; nothing new to flush there.
        if let Err(err) = self.replica.commit() {
            error!(cause = %err, "commit failed; refusing writes until restart");
            self.failed = true;
        }
    }

    fn send(&mut self, id: SessionId, frames: Vec<Vec<u8>>) {
        let Some(slot) = self.sessions.get(&id) else {
            return;
        };
        for frame in frames {
            self.bytes_out += frame.len() as u64;
            if slot.outbox.send(frame).is_err() {
                self.end(id, "connection closed".into());
                return;
            }
        }
    }

    fn end(&mut self, id: SessionId, reason: String) {
        let Some(slot) = self.sessions.remove(&id) else {
            return;
        };
        let stats = slot.session.stats();
        let record = self.peers.entry(slot.peer).or_default();
        record.bytes_in += stats.bytes_in;
        record.bytes_out += stats.bytes_out;
        record.last_error = Some(reason.clone());
        debug!(peer = %slot.peer.short(), session = id, %reason, "session ended");
    }

    fn status(&self) -> Status {
        let mut peers = Vec::new();
        for (peer, record) in &self.peers {
            let live = self.sessions.values().find(|s| s.peer == *peer);
            let stats = live.map(|s| s.session.stats()).unwrap_or_default();
            let SessionStats {
                bytes_in,
                bytes_out,
                ..
            } = stats;
            peers.push(PeerStatus {
                node_id: peer.to_string(),
                configured: record.configured,
                connected: live.is_some(),
                last_sync: record.last_sync,
                bytes_in: record.bytes_in + bytes_in,
                bytes_out: record.bytes_out + bytes_out,
                entries_to_send: live.map_or(0, |s| s.session.entries_to_send(&self.replica)),
                entries_to_receive: live.map_or(0, |s| s.session.entries_to_receive(&self.replica)),
                last_error: if live.is_some() {
                    None
                } else {
                    record.last_error.clone()
                },
            });
        }
        Status {
            node_id: self.node.to_string(),
            healthy: !self.failed,
            feeds: self.replica.heads().len(),
            waiting_changes: self.replica.waiting_changes(),
            last_sync: self.peers.values().filter_map(|p| p.last_sync).max(),
            bytes_in: self.bytes_in,
            bytes_out: self.bytes_out,
            peers,
        }
    }
}
