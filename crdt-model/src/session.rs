//! One sync session with one peer, as a state machine: messages in, messages out.
//!
//! ```text
//!   both sides:  Hello ──▶            (digest of what I hold of the shared feeds)
//!                ◀── Hello
//!   digests equal: in sync, done. Otherwise:
//!                Vector ──▶ / ◀── Vector
//!   then, each way, one round in flight at a time:
//!                Entries ──▶          (runs the peer lacks, within the round budget)
//!                ◀── Ack              (the receiver's heads of the feeds it touched)
//!   whenever heads move later:  Entries, or Have for what cannot be sent yet
//! ```
//!
//! One round in flight keeps the acknowledgement exact: an `Ack` tells the sender precisely
//! where the receiver stands on every feed of that round (including a feed it skipped for a
//! gap), so nothing is resent and nothing is missed. The round budget is the link's knob:
//! throughput is one budget per round trip.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use crate::ids::{FeedId, NodeId, Scope};
use crate::replica::{ReceiveError, Replica, ReplicaError};
use crate::store::Store;
use crate::vector::Vector;
use crate::wire::{Message, Run, WireError};

/// Default bytes of entries per round.
pub const DEFAULT_ROUND_BUDGET_BYTES: usize = 256 << 10;

/// Which scopes a session exchanges. Both ends must use the same filter, or their digests
/// never match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ScopeFilter {
    #[default]
    All,
    Only(BTreeSet<Scope>),
}

impl ScopeFilter {
    pub fn allows(&self, feed: &FeedId) -> bool {
        match self {
            ScopeFilter::All => true,
            ScopeFilter::Only(scopes) => scopes.contains(&feed.scope),
        }
    }
}

/// Who may write what, as far as this node knows: the node's trust (certificates and
/// revocations) seen from the pure core. Without a gate every origin is relayed and admitted,
/// which is only right for a development network.
pub trait FeedGate: Send + Sync + fmt::Debug {
    /// Whether `origin`'s feeds are exchanged at all (false once it is revoked). Both ends of
    /// a session that know the same revocations leave the same feeds out of their digests.
    fn relays(&self, origin: &NodeId) -> bool;
    /// Whether an entry written by `origin` in `scope` may be stored and applied; the error
    /// says why not (no certificate known, not a writer of the scope, revoked).
    fn admits(&self, origin: &NodeId, scope: &Scope) -> Result<(), String>;
}

#[derive(Clone, Debug)]
pub struct SessionConfig {
    pub round_budget_bytes: usize,
    pub filter: ScopeFilter,
    /// Checked on every run received and every feed offered; `None` admits everything.
    pub gate: Option<Arc<dyn FeedGate>>,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            round_budget_bytes: DEFAULT_ROUND_BUDGET_BYTES,
            filter: ScopeFilter::All,
            gate: None,
        }
    }
}

impl SessionConfig {
    /// Whether `feed` is exchanged in this session: its scope passes the filter and its
    /// origin is relayed by the gate.
    pub fn exchanges(&self, feed: &FeedId) -> bool {
        self.filter.allows(feed) && self.gate.as_ref().is_none_or(|g| g.relays(&feed.origin))
    }
}

/// Why a session ended.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    #[error("malformed message: {0}")]
    Wire(#[from] WireError),
    #[error("refused entries: {0}")]
    Receive(#[from] ReceiveError),
    #[error(transparent)]
    Replica(#[from] ReplicaError),
    #[error("peer introduced itself as {got}, but the transport authenticated {expected}")]
    PeerMismatch { expected: NodeId, got: NodeId },
    #[error("unexpected {kind} message while {phase}")]
    Unexpected {
        kind: &'static str,
        phase: &'static str,
    },
    #[error("peer sent entries of scope {scope}, which this session does not exchange")]
    ForeignScope { scope: Scope },
    #[error("peer sent entries of {origin} in scope {scope}, refused: {reason}")]
    NotPermitted {
        origin: NodeId,
        scope: Scope,
        reason: String,
    },
    #[error("peer ended the session: {0}")]
    RefusedByPeer(String),
}

/// Byte and entry counts of one session.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionStats {
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub messages_in: u64,
    pub messages_out: u64,
    pub entries_in: u64,
    pub entries_out: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Hello sent, waiting for the peer's.
    Greeting,
    /// Vector sent, waiting for the peer's.
    Exchanging,
    /// Both know where the other stands.
    Live,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Greeting => "greeting",
            Phase::Exchanging => "exchanging vectors",
            Phase::Live => "live",
        }
    }
}

/// The state of one session with one peer.
#[derive(Debug)]
pub struct Session {
    peer: NodeId,
    config: SessionConfig,
    phase: Phase,
    /// The vector my Hello's digest stood for: what the peer holds if the digests match.
    advertised: Vector,
    /// The digest my Hello carried. Both sides compare the two Hellos' digests, so both
    /// reach the same verdict even if heads move while the Hellos cross.
    advertised_digest: [u8; 32],
    /// What the peer holds, as far as I know (including what I sent and it has not acked).
    peer_has: Vector,
    /// The feeds of the one `Entries` message awaiting its `Ack`.
    in_flight: Option<BTreeSet<FeedId>>,
    stats: SessionStats,
    /// Entries sent per scope since the last [`Session::take_sent`]: the audit record.
    sent: BTreeMap<Scope, u64>,
}

impl Session {
    pub fn new(peer: NodeId, config: SessionConfig) -> Self {
        Self {
            peer,
            config,
            phase: Phase::Greeting,
            advertised: Vector::new(),
            advertised_digest: [0; 32],
            peer_has: Vector::new(),
            in_flight: None,
            stats: SessionStats::default(),
            sent: BTreeMap::new(),
        }
    }

    pub fn peer(&self) -> NodeId {
        self.peer
    }

    pub fn stats(&self) -> SessionStats {
        self.stats
    }

    /// Entries sent to the peer per scope since the last call: what the node's audit records.
    pub fn take_sent(&mut self) -> BTreeMap<Scope, u64> {
        std::mem::take(&mut self.sent)
    }

    /// What the peer is known to hold.
    pub fn peer_has(&self) -> &Vector {
        &self.peer_has
    }

    /// The session's opening message.
    pub fn start<S: Store>(&mut self, replica: &Replica<S>) -> Message {
        let config = &self.config;
        self.advertised = replica.heads().vector(|f| config.exchanges(f));
        self.advertised_digest = replica.heads().digest(|f| config.exchanges(f));
        Message::Hello {
            node: replica.node_id(),
            digest: self.advertised_digest,
            feeds: self.advertised.len() as u64,
        }
    }

    /// Entries I hold that the peer lacks (known once the vectors are exchanged).
    pub fn entries_to_send<S: Store>(&self, replica: &Replica<S>) -> u64 {
        let mine = replica.heads().vector(|f| self.config.exchanges(f));
        if self.phase == Phase::Live {
            mine.entries_ahead_of(&self.peer_has)
        } else {
            0
        }
    }

    /// Entries the peer holds that I lack.
    pub fn entries_to_receive<S: Store>(&self, replica: &Replica<S>) -> u64 {
        let mine = replica.heads().vector(|f| self.config.exchanges(f));
        if self.phase == Phase::Live {
            self.peer_has.entries_ahead_of(&mine)
        } else {
            0
        }
    }

    /// Both sides hold the same entries of the shared feeds, and nothing is in flight.
    pub fn in_sync<S: Store>(&self, replica: &Replica<S>) -> bool {
        self.phase == Phase::Live
            && self.in_flight.is_none()
            && self.entries_to_send(replica) == 0
            && self.entries_to_receive(replica) == 0
    }

    /// Decodes and handles one message from the peer; returns the encoded replies.
    pub fn on_frame<S: Store>(
        &mut self,
        replica: &mut Replica<S>,
        frame: &[u8],
    ) -> Result<Vec<Vec<u8>>, SessionError> {
        self.stats.bytes_in += frame.len() as u64;
        self.stats.messages_in += 1;
        let message = Message::decode(frame)?;
        let replies = self.on_message(replica, message)?;
        Ok(self.encode(replies))
    }

    /// Encodes outgoing messages, counting them.
    pub fn encode(&mut self, messages: Vec<Message>) -> Vec<Vec<u8>> {
        messages
            .into_iter()
            .map(|message| {
                let bytes = message.encode();
                self.stats.bytes_out += bytes.len() as u64;
                self.stats.messages_out += 1;
                bytes
            })
            .collect()
    }

    /// Handles one message from the peer.
    pub fn on_message<S: Store>(
        &mut self,
        replica: &mut Replica<S>,
        message: Message,
    ) -> Result<Vec<Message>, SessionError> {
        match (self.phase, message) {
            (_, Message::Refuse { reason }) => Err(SessionError::RefusedByPeer(reason)),
            (Phase::Greeting, Message::Hello { node, digest, .. }) => {
                self.on_hello(replica, node, digest)
            }
            (Phase::Exchanging, Message::Vector(vector)) => {
                self.peer_has = vector;
                self.phase = Phase::Live;
                Ok(self.pump(replica)?.into_iter().collect())
            }
            (Phase::Exchanging | Phase::Live, Message::Entries(runs)) => {
                self.on_entries(replica, runs)
            }
            (Phase::Live, Message::Ack(ack)) => self.on_ack(replica, ack),
            (Phase::Live, Message::Have(have)) => {
                for (feed, seq) in have.iter() {
                    self.peer_has.raise(feed, seq);
                }
                Ok(Vec::new())
            }
            (phase, message) => Err(SessionError::Unexpected {
                kind: message.kind(),
                phase: phase.name(),
            }),
        }
    }

    /// Heads moved (a local write, or entries from another peer): send what the peer lacks,
    /// and announce what cannot be sent yet so the peer does not send it to me.
    pub fn on_local_change<S: Store>(
        &mut self,
        replica: &mut Replica<S>,
        advanced: &BTreeSet<FeedId>,
    ) -> Result<Vec<Message>, SessionError> {
        if self.phase != Phase::Live {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        let sent: BTreeSet<FeedId> = self.in_flight.clone().unwrap_or_default();
        if let Some(entries) = self.pump(replica)? {
            out.push(entries);
        }
        let sent_now = self.in_flight.clone().unwrap_or_default();
        let have: Vector = advanced
            .iter()
            .filter(|feed| self.config.exchanges(feed))
            .filter(|feed| !sent_now.contains(*feed) || sent.contains(*feed))
            .map(|feed| (feed.clone(), replica.heads().seq(feed)))
            .filter(|(feed, seq)| self.peer_has.get(feed) < *seq)
            .collect();
        if !have.is_empty() {
            out.push(Message::Have(have));
        }
        Ok(out)
    }

    fn on_hello<S: Store>(
        &mut self,
        replica: &mut Replica<S>,
        node: NodeId,
        digest: [u8; 32],
    ) -> Result<Vec<Message>, SessionError> {
        if node != self.peer {
            return Err(SessionError::PeerMismatch {
                expected: self.peer,
                got: node,
            });
        }
        if digest == self.advertised_digest {
            // The peer holds what I advertised; whatever I gained since goes out right away.
            self.peer_has = self.advertised.clone();
            self.phase = Phase::Live;
            return Ok(self.pump(replica)?.into_iter().collect());
        }
        let config = &self.config;
        self.phase = Phase::Exchanging;
        Ok(vec![Message::Vector(
            replica.heads().vector(|f| config.exchanges(f)),
        )])
    }

    fn on_entries<S: Store>(
        &mut self,
        replica: &mut Replica<S>,
        runs: Vec<Run>,
    ) -> Result<Vec<Message>, SessionError> {
        let sent_by_peer: Vec<(FeedId, u64)> = runs
            .iter()
            .map(|run| (run.feed.clone(), run.last_seq()))
            .collect();
        if let Some((feed, _)) = sent_by_peer
            .iter()
            .find(|(f, _)| !self.config.filter.allows(f))
        {
            return Err(SessionError::ForeignScope {
                scope: feed.scope.clone(),
            });
        }
        if let Some(gate) = &self.config.gate {
            for (feed, _) in &sent_by_peer {
                gate.admits(&feed.origin, &feed.scope).map_err(|reason| {
                    SessionError::NotPermitted {
                        origin: feed.origin,
                        scope: feed.scope.clone(),
                        reason,
                    }
                })?;
            }
        }
        let received = replica.receive(runs)?;
        self.stats.entries_in += received.stored as u64;
        for (feed, seq) in sent_by_peer {
            self.peer_has.raise(&feed, seq);
        }
        Ok(vec![Message::Ack(received.ack)])
    }

    fn on_ack<S: Store>(
        &mut self,
        replica: &mut Replica<S>,
        ack: Vector,
    ) -> Result<Vec<Message>, SessionError> {
        let Some(feeds) = self.in_flight.take() else {
            return Err(SessionError::Unexpected {
                kind: "ack",
                phase: "nothing in flight",
            });
        };
        for feed in feeds {
            let acked = ack.get(&feed);
            self.peer_has.set(feed, acked);
        }
        for (feed, seq) in ack.iter() {
            self.peer_has.raise(feed, seq);
        }
        Ok(self.pump(replica)?.into_iter().collect())
    }

    /// The next round of entries, if nothing is in flight and the peer lacks something.
    fn pump<S: Store>(
        &mut self,
        replica: &mut Replica<S>,
    ) -> Result<Option<Message>, SessionError> {
        if self.phase != Phase::Live || self.in_flight.is_some() {
            return Ok(None);
        }
        let config = &self.config;
        let runs = replica.runs_for(
            &self.peer_has,
            |f| config.exchanges(f),
            config.round_budget_bytes,
        )?;
        if runs.is_empty() {
            return Ok(None);
        }
        let mut feeds = BTreeSet::new();
        for run in &runs {
            self.peer_has.raise(&run.feed, run.last_seq());
            self.stats.entries_out += run.items.len() as u64;
            *self.sent.entry(run.feed.scope.clone()).or_default() += run.items.len() as u64;
            feeds.insert(run.feed.clone());
        }
        self.in_flight = Some(feeds);
        Ok(Some(Message::Entries(runs)))
    }
}
