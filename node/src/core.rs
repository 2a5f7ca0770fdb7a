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
use crate::trust::{self, Admitted, Preamble, TrustHandle};

/// A session younger than this is kept when a second connection from the same peer races it
/// and the tie-break favours the first; an older one is presumed stale and replaced.
const RACE_WINDOW: Duration = Duration::from_secs(2);

pub type SessionId = u64;

/// Where the trust learned from peers is kept, in the store's `meta` tree.
pub const META_REVOCATIONS: &str = "trust/revocations";
pub const META_CERTIFICATES: &str = "trust/certificates";

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
    #[error("this box's certificate does not allow writing scope {scope}")]
    ScopeNotWritable { scope: String },
    #[error("this box's certificate does not allow reading scope {scope}")]
    ScopeNotReadable { scope: String },
}

/// What a durable write did.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PutOutcome {
    /// Sequence number of the new entry on this box's feed; `None` if nothing changed.
    pub seq: Option<u64>,
}

/// Why a connection was not given a session.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenRefused {
    #[error("already in session with this peer")]
    AlreadyConnected,
    #[error("the box is shutting down")]
    ShuttingDown,
    #[error("peer not admitted: {0}")]
    Untrusted(String),
}

/// What this box has sent, per peer and scope, since its store was created: the record that
/// shows, say, that no health entry ever went to a resort's box.
#[derive(Debug, Clone, Serialize)]
pub struct Audit {
    pub sent: Vec<AuditRow>,
    pub refused: Vec<RefusalRow>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AuditRow {
    pub peer: String,
    /// The peer's certified role and site, when its certificate is known.
    pub role: Option<String>,
    pub site: Option<String>,
    pub scope: String,
    pub entries: u64,
}

/// Sessions this box ended because a peer sent what it may not (since start).
#[derive(Debug, Clone, Serialize)]
pub struct RefusalRow {
    pub peer: String,
    pub refused: u64,
    pub last_reason: Option<String>,
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
    /// What this box is certified as and what it trusts; `None` when it runs open.
    pub trust: Option<TrustStatus>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TrustStatus {
    pub role: String,
    pub site: String,
    pub network: String,
    /// Unix seconds after which this box's certificate no longer holds.
    pub certificate_valid_until: i64,
    pub known_certificates: usize,
    pub revoked_nodes: Vec<String>,
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
    /// The peer's certified role, once admitted (enrolled boxes only).
    pub role: Option<String>,
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
    Preamble {
        reply: oneshot::Sender<Vec<u8>>,
    },
    Open {
        peer: NodeId,
        dialed: bool,
        preamble: Vec<u8>,
        outbox: mpsc::UnboundedSender<Vec<u8>>,
        reply: oneshot::Sender<Result<SessionId, OpenRefused>>,
    },
    Revoke {
        armored: String,
        reply: oneshot::Sender<Result<usize, String>>,
    },
    Audit {
        reply: oneshot::Sender<Result<Audit, String>>,
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

    /// This box's authentication preamble, the first frame of every connection.
    pub async fn preamble(&self) -> Option<Vec<u8>> {
        self.ask(|reply| Command::Preamble { reply }).await
    }

    /// Admits `peer` on its `preamble` and registers the connection; its frames to send
    /// arrive on `outbox`, starting with the Hello. The core dropping the outbox's sender
    /// means: close.
    pub async fn open(
        &self,
        peer: NodeId,
        dialed: bool,
        preamble: Vec<u8>,
        outbox: mpsc::UnboundedSender<Vec<u8>>,
    ) -> Result<SessionId, OpenRefused> {
        self.ask(|reply| Command::Open {
            peer,
            dialed,
            preamble,
            outbox,
            reply,
        })
        .await
        .unwrap_or(Err(OpenRefused::ShuttingDown))
    }

    /// Applies an armored revocation list from the operator; returns how many were new.
    pub async fn revoke(&self, armored: String) -> Result<usize, String> {
        self.ask(|reply| Command::Revoke { armored, reply })
            .await
            .unwrap_or(Err("the box is shutting down".into()))
    }

    pub async fn audit(&self) -> Result<Audit, String> {
        self.ask(|reply| Command::Audit { reply })
            .await
            .unwrap_or(Err("the box is shutting down".into()))
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
    /// The enrolled box's trust; `None` runs open (development).
    pub trust: Option<TrustHandle>,
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
        trust: config.trust,
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
    /// When the peer's certificate stops being valid (unix seconds); `None` when open.
    valid_until: Option<i64>,
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
    role: Option<String>,
    /// Sessions ended because the peer sent entries it may not (since start).
    refused: u64,
    last_refusal: Option<String>,
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
    trust: Option<TrustHandle>,
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
                let result = self.get(&key);
                deferred.push(Deferred::Get(reply, result));
            }
            Command::Preamble { reply } => {
                let preamble = match &self.trust {
                    Some(trust) => trust.read().preamble(),
                    None => Preamble::default(),
                };
                let _ = reply.send(preamble.encode());
            }
            Command::Open {
                peer,
                dialed,
                preamble,
                outbox,
                reply,
            } => {
                let result = self
                    .admit(peer, &preamble)
                    .and_then(|admitted| self.open(peer, dialed, admitted, outbox, deferred));
                let _ = reply.send(result);
            }
            Command::Revoke { armored, reply } => {
                let _ = reply.send(self.revoke(&armored));
            }
            Command::Audit { reply } => {
                let _ = reply.send(self.audit());
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

    /// Whether this box's certificate allows what `may` asks; an open box may do anything.
    fn certified(&self, may: impl Fn(&provisioning::VerifiedPeer) -> bool) -> bool {
        self.trust
            .as_ref()
            .is_none_or(|trust| may(trust.read().me()))
    }

    fn get(&mut self, key: &DocKey) -> Result<Option<Value>, CoreError> {
        if !self.certified(|me| me.may_read(&key.scope)) {
            return Err(CoreError::ScopeNotReadable {
                scope: key.scope.to_string(),
            });
        }
        match self.replica.doc(key) {
            Ok(doc) => Ok(doc.map(to_json)),
            Err(err) => Err(CoreError::Replica(err.to_string())),
        }
    }

    fn put(&mut self, key: &DocKey, fields: &Map<String, Value>) -> Result<PutOutcome, CoreError> {
        if self.failed {
            return Err(CoreError::StoreFailed);
        }
        if !self.certified(|me| me.may_write(&key.scope)) {
            return Err(CoreError::ScopeNotWritable {
                scope: key.scope.to_string(),
            });
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

    /// Decides on a peer's preamble; ends sessions of nodes it reveals as revoked, and
    /// restarts the others if it taught this box something they should hear of.
    fn admit(&mut self, peer: NodeId, preamble: &[u8]) -> Result<Admitted, OpenRefused> {
        let now = Utc::now().timestamp();
        let result = match &self.trust {
            None => Preamble::decode(preamble, None).and_then(|p| trust::admit_open(&p)),
            Some(handle) => {
                let mut trust = handle.write();
                let authority = *trust.authority();
                Preamble::decode(preamble, Some(&authority))
                    .and_then(|p| trust.admit(&peer, p, now))
            }
        };
        let admitted = result.map_err(|err| {
            warn!(peer = %peer, cause = %err, "peer refused at authentication");
            let record = self.peers.entry(peer).or_default();
            record.last_error = Some(err.to_string());
            OpenRefused::Untrusted(err.to_string())
        })?;
        if let Some(verified) = &admitted.peer {
            self.peers.entry(peer).or_default().role = Some(verified.role.to_string());
        }
        self.on_trust_changed(&admitted.newly_revoked, admitted.learned, Some(peer));
        Ok(admitted)
    }

    /// Ends the sessions of `revoked` nodes; if anything was learned, restarts every other
    /// session but `except`'s, so that their next preambles pass it on. Saves the trust.
    fn on_trust_changed(&mut self, revoked: &[NodeId], learned: bool, except: Option<NodeId>) {
        for node in revoked {
            if *node == self.node {
                error!(
                    "this box has been revoked by the network authority: every peer refuses it; \
                     enroll a replacement (docs/provisioning.md)"
                );
            } else {
                warn!(peer = %node, "node revoked; its sessions end and its entries are refused");
            }
        }
        let ids: Vec<(SessionId, NodeId)> =
            self.sessions.iter().map(|(id, s)| (*id, s.peer)).collect();
        for (id, peer) in ids {
            if revoked.contains(&peer) {
                self.end(id, "peer revoked".into());
            } else if learned && Some(peer) != except {
                self.end(id, "trust updated; reconnecting to pass it on".into());
            }
        }
        if learned && let Some(trust) = &self.trust {
            let trust = trust.read();
            let saved = self
                .store
                .put_meta(META_REVOCATIONS, &trust.revocations().encode())
                .and_then(|()| {
                    self.store
                        .put_meta(META_CERTIFICATES, &trust.encode_known())
                });
            if let Err(err) = saved {
                error!(cause = %err, "cannot save what this box trusts");
            }
        }
    }

    /// Applies an armored revocation list brought by the operator.
    fn revoke(&mut self, armored: &str) -> Result<usize, String> {
        let Some(handle) = self.trust.clone() else {
            return Err(
                "this box runs open (development): there is no network to revoke in".into(),
            );
        };
        let newly = {
            let mut trust = handle.write();
            let authority = *trust.authority();
            let list = provisioning::revocation::RevocationList::from_armored(armored, &authority)
                .or_else(|_| {
                    provisioning::revocation::Revocation::from_armored(armored).and_then(|r| {
                        let mut list = provisioning::revocation::RevocationList::new();
                        list.insert(&authority, r).map(|_| list)
                    })
                })
                .map_err(|err| err.to_string())?;
            trust
                .learn_revocations(&list)
                .map_err(|err| err.to_string())?
        };
        info!(revoked = newly.len(), "revocations applied");
        self.on_trust_changed(&newly, !newly.is_empty(), None);
        Ok(newly.len())
    }

    fn audit(&self) -> Result<Audit, String> {
        let rows = self.store.sent_audit().map_err(|err| err.to_string())?;
        let describe = |node: &NodeId| self.trust.as_ref().and_then(|t| t.read().describe(node));
        let sent = rows
            .into_iter()
            .map(|(peer, scope, entries)| {
                let (role, site) = describe(&peer).unzip();
                AuditRow {
                    peer: peer.to_string(),
                    role,
                    site,
                    scope: scope.to_string(),
                    entries,
                }
            })
            .collect();
        let refused = self
            .peers
            .iter()
            .filter(|(_, record)| record.refused > 0)
            .map(|(peer, record)| RefusalRow {
                peer: peer.to_string(),
                refused: record.refused,
                last_reason: record.last_refusal.clone(),
            })
            .collect();
        Ok(Audit { sent, refused })
    }

    fn open(
        &mut self,
        peer: NodeId,
        dialed: bool,
        admitted: Admitted,
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
        let config = SessionConfig {
            filter: admitted.filter,
            ..self.session_config.clone()
        };
        let mut session = Session::new(peer, config);
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
                valid_until: admitted.peer.as_ref().map(|p| p.not_after_unix_s),
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
        if slot
            .valid_until
            .is_some_and(|until| Utc::now().timestamp() > until)
        {
            warn!(peer = %slot.peer, "peer's certificate expired; session ends");
            self.end(id, "peer's certificate expired".into());
            return;
        }
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
                if matches!(err, SessionError::NotPermitted { .. }) {
                    let record = self.peers.entry(slot.peer).or_default();
                    record.refused += 1;
                    record.last_refusal = Some(err.to_string());
                }
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
        let Some(slot) = self.sessions.get_mut(&id) else {
            return;
        };
        for (scope, entries) in slot.session.take_sent() {
            if let Err(err) = self.store.add_sent(&slot.peer, &scope, entries) {
                error!(cause = %err, "cannot record what was sent");
            }
        }
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
                role: record.role.clone(),
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
            trust: self.trust.as_ref().map(|handle| {
                let trust = handle.read();
                let me = trust.me();
                let mut revoked: Vec<String> = trust
                    .revocations()
                    .iter()
                    .map(|r| r.body().node.to_string())
                    .collect();
                revoked.dedup();
                TrustStatus {
                    role: me.role.to_string(),
                    site: me.site.to_string(),
                    network: me.network.to_string(),
                    certificate_valid_until: me.not_after_unix_s,
                    known_certificates: trust.known().count(),
                    revoked_nodes: revoked,
                }
            }),
        }
    }
}
