//! One broker connection, and a core session per peer carried over it.
//!
//! Three kinds of task: the poller drives rumqttc's event loop (and with it every
//! reconnection) and hands what arrives to the link; the link owns every peer's state,
//! decides on opens, verifies preambles, reassembles frames and feeds them to the core; one
//! forwarder per admitted session cuts the core's outgoing frames into chunks and publishes
//! them, so a slow broker holds back that session only.
//!
//! A session opens in three steps (`docs/mqtt.md`):
//!
//! 1. the opener publishes an *open* chunk carrying its fresh nonce;
//! 2. the accepter answers with its first frame, its signed preamble, under its own nonce;
//! 3. the opener verifies it and answers with its own signed preamble; each side hands the
//!    core the peer's preamble once its signature holds, and the sync protocol starts.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crdt_model::NodeId;
use rumqttc::{AsyncClient, EventLoop, MqttOptions, NetworkOptions, Packet, QoS};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::auth::{self, Ephemeral, NodeKey, SessionCipher, SessionNames, Transcript};
use super::chunk::{self, Chunk, HEADER_BYTES, Kind, Reassembler};
use super::login::BoxLogin;
use super::topics::Topics;
use super::{BrokerUrl, MqttError};
use crate::core::{CoreHandle, SessionId};
use crate::transport::Backoff;

/// How often the link looks at its timers.
const TICK: Duration = Duration::from_millis(250);
/// Requests rumqttc queues before a publisher waits: bounds what a session holds in memory.
const REQUEST_QUEUE: usize = 256;
/// Peers the link keeps state for, configured or not: bounds what opens from strangers cost.
const MAX_PEERS: usize = 4096;
/// A fixed MQTT PUBLISH header: type and flags, remaining length (at most 4), topic length,
/// packet id.
const PUBLISH_OVERHEAD: usize = 1 + 4 + 2 + 2;

/// What the link needs to run.
#[derive(Debug)]
pub struct LinkConfig {
    pub broker: BrokerUrl,
    /// Set for `mqtts`.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub login: Login,
    /// The network's id in hex, or `open`.
    pub network: String,
    pub topic_prefix: String,
    pub me: NodeId,
    pub key: NodeKey,
    pub max_packet_bytes: usize,
    pub ping: Duration,
    pub idle_timeout: Duration,
    pub fallback_after: Duration,
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
    /// Peers to open sessions with.
    pub peers: Vec<NodeId>,
    /// Peers that iroh dials too: MQTT waits `fallback_after` before taking them over.
    pub iroh_peers: Vec<NodeId>,
}

/// How the link logs in to its broker.
#[derive(Debug)]
pub enum Login {
    Anonymous,
    /// A user name and password from the config, for a broker culao does not run.
    Password {
        user: String,
        password: String,
    },
    /// The enrolled box's signed token (`login.rs`), fresh at each connection.
    Box(Box<BoxLogin>),
}

impl Login {
    /// Sets the credentials of the next connection attempt.
    fn apply(&self, options: &mut MqttOptions) {
        match self {
            Login::Anonymous => {}
            Login::Password { user, password } => {
                options.set_credentials(user.clone(), password.clone());
            }
            Login::Box(login) => {
                let now = chrono::Utc::now().timestamp();
                let (user, token) = login.credentials(&options.client_id(), now);
                options.set_credentials(user, token);
            }
        }
    }
}

/// What the poller and the forwarders tell the link.
#[derive(Debug)]
enum Event {
    Up,
    Down(String),
    Message {
        topic: String,
        payload: Vec<u8>,
    },
    /// The core ended the session of `peer` whose local nonce is `mine`.
    Ended {
        peer: NodeId,
        mine: u64,
    },
}

/// Starts the link; it runs until `stop` changes or its sender is dropped.
pub fn spawn(
    mut config: LinkConfig,
    core: CoreHandle,
    stop: watch::Receiver<()>,
) -> Result<tokio::task::JoinHandle<()>, MqttError> {
    let client_id = format!("culao-{}", &config.me.to_string()[..16]);
    let mut options = MqttOptions::new(client_id, config.broker.host.clone(), config.broker.port);
    options
        .set_keep_alive(Duration::from_secs(5))
        // A new broker session each time: what an old one queued belongs to ended sessions.
        .set_clean_session(true)
        .set_max_packet_size(config.max_packet_bytes, config.max_packet_bytes);
    if let Some(tls) = &config.tls {
        options.set_transport(rumqttc::Transport::Tls(rumqttc::TlsConfiguration::Rustls(
            tls.clone(),
        )));
    }
    let login = std::mem::replace(&mut config.login, Login::Anonymous);
    login.apply(&mut options);
    let (client, mut eventloop) = AsyncClient::new(options, REQUEST_QUEUE);
    let mut network = NetworkOptions::new();
    // Without it every QoS 1 round trip waits for delayed ACKs (~40 ms on loopback).
    network.set_tcp_nodelay(true);
    network.set_connection_timeout(5);
    eventloop.set_network_options(network);

    let (events_tx, events) = mpsc::unbounded_channel();
    let seed = u64::from_le_bytes(array8(config.me.as_bytes()));
    let backoff = Backoff::new(config.reconnect_min, config.reconnect_max, seed);
    let poller = tokio::spawn(poll(eventloop, login, events_tx.clone(), backoff));
    info!(broker = %format!("{}:{}", config.broker.host, config.broker.port), tls = config.tls.is_some(), peers = config.peers.len(), "MQTT link starting");

    let link = Link::new(config, core, client, events_tx);
    Ok(tokio::spawn(async move {
        link.run(events, stop).await;
        poller.abort();
    }))
}

fn array8(bytes: &[u8]) -> [u8; 8] {
    let mut out = [0u8; 8];
    out.copy_from_slice(&bytes[..8]);
    out
}

/// A fresh session nonce from the operating system's randomness (through iroh's key
/// generator, the one source of randomness the node already uses). Never zero: zero means
/// "no session yet" in an open chunk.
fn fresh_nonce() -> u64 {
    let bytes = iroh::SecretKey::generate().to_bytes();
    u64::from_le_bytes(array8(&bytes)).max(1)
}

/// Drives rumqttc's event loop; reconnects by polling again after a failure, with fresh
/// credentials.
async fn poll(
    mut eventloop: EventLoop,
    login: Login,
    events: mpsc::UnboundedSender<Event>,
    mut backoff: Backoff,
) {
    loop {
        let event = match eventloop.poll().await {
            Ok(rumqttc::Event::Incoming(Packet::ConnAck(_))) => {
                backoff.reset();
                Event::Up
            }
            Ok(rumqttc::Event::Incoming(Packet::Publish(publish))) => Event::Message {
                topic: publish.topic,
                payload: publish.payload.to_vec(),
            },
            Ok(_) => continue,
            Err(err) => {
                let _ = events.send(Event::Down(err.to_string()));
                tokio::time::sleep(backoff.next_wait()).await;
                login.apply(&mut eventloop.mqtt_options);
                continue;
            }
        };
        if events.send(event).is_err() {
            return;
        }
    }
}

struct Peer {
    /// Listed in `mqtt.peers`: the link opens sessions with it, not only answers.
    configured: bool,
    /// Also dialled over iroh, which is preferred.
    over_iroh: bool,
    state: State,
    /// An open received while a session is admitted: answered, but the session is replaced
    /// only once the new side's preamble verifies, so that a forged open cannot end it.
    pending: Option<Box<Live>>,
    backoff: Backoff,
    next_open: Instant,
    /// Since when no transport has had a session with this peer.
    unconnected_since: Option<Instant>,
}

enum State {
    Idle,
    Opening {
        nonce: u64,
        sent: Instant,
        ephemeral: Ephemeral,
    },
    Live(Box<Live>),
}

/// What a tick found to do for one peer.
enum Due {
    End(&'static str, bool),
    Ping(u64, u64),
    Open,
    Forget,
    Nothing,
}

/// One session over the broker, from the first chunk of the accepter to its end.
struct Live {
    mine: u64,
    theirs: u64,
    /// This side sent the open.
    opener: bool,
    /// This side's key for the session's key agreement, until the peer's is known.
    ephemeral: Option<Ephemeral>,
    /// The session's keys, once the peer's signed opening has verified.
    cipher: Option<Arc<SessionCipher>>,
    inbound: Reassembler,
    /// The core's session and the flag that stops its forwarder; `None` until the peer's
    /// signed preamble has verified and the core admitted it.
    session: Option<(SessionId, Arc<AtomicBool>)>,
    last_heard: Instant,
    last_sent: Instant,
}

impl Live {
    /// A session whose nonces are known, before the peer's signed opening has arrived.
    fn new(mine: u64, theirs: u64, opener: bool, ephemeral: Ephemeral) -> Box<Self> {
        let now = Instant::now();
        Box::new(Self {
            mine,
            theirs,
            opener,
            ephemeral: Some(ephemeral),
            cipher: None,
            inbound: Reassembler::default(),
            session: None,
            last_heard: now,
            last_sent: now,
        })
    }

    /// The opener's and the accepter's nonces, in that order.
    fn nonces(&self) -> (u64, u64) {
        if self.opener {
            (self.mine, self.theirs)
        } else {
            (self.theirs, self.mine)
        }
    }
}

struct Link {
    config: LinkConfig,
    topics: Topics,
    core: CoreHandle,
    client: AsyncClient,
    events: mpsc::UnboundedSender<Event>,
    connected: bool,
    /// The inbox subscription is queued for the current broker connection.
    subscribed: bool,
    peers: BTreeMap<NodeId, Peer>,
}

impl Link {
    fn new(
        config: LinkConfig,
        core: CoreHandle,
        client: AsyncClient,
        events: mpsc::UnboundedSender<Event>,
    ) -> Self {
        let topics = Topics::new(&config.topic_prefix, &config.network, config.me);
        let mut link = Self {
            topics,
            core,
            client,
            events,
            connected: false,
            subscribed: false,
            peers: BTreeMap::new(),
            config,
        };
        for peer in link.config.peers.clone() {
            link.peer(peer).configured = true;
        }
        link
    }

    fn peer(&mut self, id: NodeId) -> &mut Peer {
        let seed = u64::from_le_bytes(array8(id.as_bytes()));
        let over_iroh = self.config.iroh_peers.contains(&id);
        let (min, max) = (self.config.reconnect_min, self.config.reconnect_max);
        self.peers.entry(id).or_insert_with(|| Peer {
            configured: false,
            over_iroh,
            state: State::Idle,
            pending: None,
            backoff: Backoff::new(min, max, seed),
            next_open: Instant::now(),
            unconnected_since: None,
        })
    }

    async fn run(
        mut self,
        mut events: mpsc::UnboundedReceiver<Event>,
        mut stop: watch::Receiver<()>,
    ) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.changed() => break,
                event = events.recv() => match event {
                    Some(event) => self.on_event(event).await,
                    None => break,
                },
                _ = tick.tick() => self.on_tick().await,
            }
        }

        let ids: Vec<NodeId> = self.peers.keys().copied().collect();
        for id in ids {
            self.end(id, "the box is shutting down", true).await;
        }
        let _ = self.client.try_disconnect();
        debug!("MQTT link stopped");
    }

    async fn on_event(&mut self, event: Event) {
        match event {
            Event::Up => {
                info!("MQTT broker connected");
                self.connected = true;
                self.subscribed = false;
                self.subscribe();
                let now = Instant::now();
                for peer in self.peers.values_mut() {
                    peer.next_open = now;
                }
            }
            Event::Down(reason) => {
                if self.connected {
                    warn!(cause = %reason, "MQTT broker connection lost; its sessions end");
                }
                self.connected = false;
                self.subscribed = false;
                for peer in self.peers.values_mut() {
                    peer.pending = None;
                }
                let ids: Vec<NodeId> = self.peers.keys().copied().collect();
                for id in ids {
                    self.end(id, "broker connection lost", false).await;
                }
            }
            Event::Message { topic, payload } => self.on_message(&topic, &payload).await,
            Event::Ended { peer, mine } => {
                let current = self
                    .peers
                    .get(&peer)
                    .is_some_and(|p| matches!(&p.state, State::Live(live) if live.mine == mine));
                if current {
                    self.end(peer, "session ended", true).await;
                }
            }
        }
    }

    /// Queues the inbox subscription; retried on the next tick if the queue is full (it may
    /// still hold publishes of the sessions the lost connection ended).
    fn subscribe(&mut self) {
        match self
            .client
            .try_subscribe(self.topics.inbox(), QoS::AtLeastOnce)
        {
            Ok(()) => self.subscribed = true,
            Err(err) => debug!(cause = %err, "cannot queue the subscription yet"),
        }
    }

    async fn on_message(&mut self, topic: &str, payload: &[u8]) {
        let Some(from) = self.topics.sender(topic) else {
            debug!(%topic, "message on a topic not ours; dropped");
            return;
        };
        let chunk = match Chunk::decode(payload) {
            Ok(chunk) => chunk,
            Err(err) => {
                debug!(peer = %from.short(), cause = %err, "malformed chunk dropped");
                return;
            }
        };
        if !self.peers.contains_key(&from) && self.peers.len() >= MAX_PEERS {
            debug!(peer = %from.short(), "too many peers; chunk dropped");
            return;
        }
        match chunk.kind {
            Kind::Open => self.on_open(from, chunk.sender).await,
            Kind::Frame => self.on_frame(from, &chunk).await,
            Kind::Ping => {
                if let Some(live) = self.live(from, &chunk) {
                    live.last_heard = Instant::now();
                }
            }
            Kind::Close => {
                let reason = String::from_utf8_lossy(chunk.payload).into_owned();
                let peer = self.peer(from);
                if peer
                    .pending
                    .as_ref()
                    .is_some_and(|p| p.theirs == chunk.sender && p.mine == chunk.receiver)
                {
                    peer.pending = None;
                    return;
                }
                let ours = match &self.peer(from).state {
                    State::Live(live) => live.theirs == chunk.sender && live.mine == chunk.receiver,
                    State::Opening { nonce, .. } => *nonce == chunk.receiver,
                    State::Idle => false,
                };
                if ours {
                    debug!(peer = %from.short(), %reason, "peer ended the session");
                    self.end(from, &format!("peer closed: {reason}"), false)
                        .await;
                }
            }
        }
    }

    /// The live session with `from` that `chunk` belongs to, if any.
    fn live(&mut self, from: NodeId, chunk: &Chunk<'_>) -> Option<&mut Live> {
        match &mut self.peers.get_mut(&from)?.state {
            State::Live(live) if live.theirs == chunk.sender && live.mine == chunk.receiver => {
                Some(live)
            }
            _ => None,
        }
    }

    async fn on_open(&mut self, from: NodeId, theirs: u64) {
        let me = self.config.me;
        let peer = self.peer(from);
        match &peer.state {
            // Both opened at once: the lower node id's open wins on both ends.
            State::Opening { .. } if me < from => return,
            State::Live(live) if live.theirs == theirs => return,
            _ => {}
        }
        if peer.pending.as_ref().is_some_and(|p| p.theirs == theirs) {
            return;
        }

        let mine = fresh_nonce();
        let ephemeral = Ephemeral::generate();
        let public = ephemeral.public();
        let fresh = Live::new(mine, theirs, false, ephemeral);
        let admitted = matches!(&peer.state, State::Live(live) if live.session.is_some());
        if admitted {
            peer.pending = Some(fresh);
            debug!(peer = %from.short(), "open received during a session; it goes on until the new one verifies");
        } else {
            self.end(from, "peer opened a new session", false).await;
            self.peer(from).state = State::Live(fresh);
            debug!(peer = %from.short(), "open received; answering with this box's preamble");
        }
        self.send_preamble(from, theirs, mine, false, &public).await;
    }

    /// A chunk of the session `from` asked for while another is admitted: once its preamble
    /// verifies, it replaces the admitted one.
    async fn on_pending_frame(&mut self, from: NodeId, chunk: &Chunk<'_>) {
        let Some(pending) = self.peers.get_mut(&from).and_then(|p| p.pending.as_mut()) else {
            return;
        };
        pending.last_heard = Instant::now();
        let nonces = pending.nonces();
        let frame = match pending.inbound.push(chunk) {
            Ok(Some(frame)) => frame,
            Ok(None) => return,
            Err(err) => {
                self.drop_pending(from, &err.to_string());
                return;
            }
        };

        let opening = match auth::verify(&self.transcript_of(from, nonces), &frame) {
            Ok(opening) => opening,
            Err(err) => {
                warn!(peer = %from.short(), cause = %err, "new session refused at authentication; the current one goes on");
                self.drop_pending(from, &err.to_string());
                return;
            }
        };
        let Some(pending) = self.peers.get_mut(&from).and_then(|p| p.pending.take()) else {
            return;
        };
        self.end(from, "peer opened a new session", true).await;
        if let Some(peer) = self.peers.get_mut(&from) {
            peer.state = State::Live(pending);
        }
        self.start_session(from, opening).await;
    }

    /// What `from` signed its opening over, for a session with these nonces (opener's,
    /// accepter's).
    fn transcript_of(
        &self,
        from: NodeId,
        (opener_nonce, accepter_nonce): (u64, u64),
    ) -> Transcript<'_> {
        Transcript {
            network: &self.config.network,
            signer: from,
            receiver: self.config.me,
            opener_nonce,
            accepter_nonce,
        }
    }

    /// Forgets the pending session with `from` and tells its sender.
    fn drop_pending(&mut self, from: NodeId, reason: &str) {
        let Some(pending) = self.peers.get_mut(&from).and_then(|p| p.pending.take()) else {
            return;
        };
        let reason = &reason.as_bytes()[..reason.len().min(256)];
        let close = Chunk::control(Kind::Close, pending.mine, pending.theirs, reason).encode();
        let _ = self
            .client
            .try_publish(self.topics.to(&from), QoS::AtLeastOnce, false, close);
    }

    /// Signs this box's ephemeral key and preamble for the session and publishes them as
    /// frame 0.
    async fn send_preamble(
        &mut self,
        peer: NodeId,
        opener_nonce: u64,
        accepter_nonce: u64,
        opener: bool,
        ephemeral: &[u8; 32],
    ) {
        let Some(preamble) = self.core.preamble().await else {
            return;
        };
        let transcript = Transcript {
            network: &self.config.network,
            signer: self.config.me,
            receiver: peer,
            opener_nonce,
            accepter_nonce,
        };
        let frame = self.config.key.sign(&transcript, ephemeral, &preamble);
        let (mine, theirs) = if opener {
            (opener_nonce, accepter_nonce)
        } else {
            (accepter_nonce, opener_nonce)
        };
        let topic = self.topics.to(&peer);
        let max_payload = self.max_payload(&topic);
        for bytes in chunk::split(&frame, 0, mine, theirs, max_payload) {
            if let Err(err) = self
                .client
                .try_publish(&topic, QoS::AtLeastOnce, false, bytes)
            {
                debug!(peer = %peer.short(), cause = %err, "cannot queue the preamble");
                return;
            }
        }
    }

    fn max_payload(&self, topic: &str) -> usize {
        self.config
            .max_packet_bytes
            .saturating_sub(PUBLISH_OVERHEAD + topic.len() + HEADER_BYTES)
            .max(64)
    }

    async fn on_frame(&mut self, from: NodeId, chunk: &Chunk<'_>) {
        // The accepter's first chunk turns this side's open into a session.
        let peer = self.peer(from);
        if let State::Opening { nonce, .. } = peer.state
            && chunk.receiver == nonce
            && (chunk.frame, chunk.index) == (0, 0)
            && let State::Opening { ephemeral, .. } =
                std::mem::replace(&mut peer.state, State::Idle)
        {
            peer.state = State::Live(Live::new(nonce, chunk.sender, true, ephemeral));
        }
        let pending = peer.pending.as_ref();
        if pending.is_some_and(|p| p.theirs == chunk.sender && p.mine == chunk.receiver) {
            self.on_pending_frame(from, chunk).await;
            return;
        }
        let Some(live) = self.live(from, chunk) else {
            debug!(peer = %from.short(), "chunk of another session dropped");
            return;
        };

        live.last_heard = Instant::now();
        let frame = match live.inbound.push(chunk) {
            Ok(Some(frame)) => frame,
            Ok(None) => return,
            Err(err) => {
                warn!(peer = %from.short(), cause = %err, "chunk sequence refused; session ends");
                self.end(from, &err.to_string(), true).await;
                return;
            }
        };
        let (Some((id, _)), Some(cipher)) = (live.session.clone(), live.cipher.clone()) else {
            self.admit(from, &frame).await;
            return;
        };
        match cipher.open(chunk.frame, &frame) {
            Ok(plain) => self.core.frame(id, plain).await,
            Err(err) => {
                warn!(peer = %from.short(), cause = %err, "sealed frame refused; session ends");
                self.end(from, &err.to_string(), true).await;
            }
        }
    }

    /// Verifies the peer's signed opening and starts the session.
    async fn admit(&mut self, from: NodeId, frame: &[u8]) {
        let Some(State::Live(live)) = self.peers.get(&from).map(|p| &p.state) else {
            return;
        };
        match auth::verify(&self.transcript_of(from, live.nonces()), frame) {
            Ok(opening) => self.start_session(from, opening).await,
            Err(err) => {
                warn!(peer = %from.short(), cause = %err, "peer refused at authentication");
                self.end(from, &err.to_string(), true).await;
            }
        }
    }

    /// Agrees on the keys of the live session with `from`, whose signed opening verified,
    /// answers it if this side opened, and opens the core's session.
    async fn start_session(&mut self, from: NodeId, opening: auth::Opening) {
        let Some(State::Live(live)) = self.peers.get_mut(&from).map(|p| &mut p.state) else {
            return;
        };
        let (mine, theirs, opener) = (live.mine, live.theirs, live.opener);
        let (opener_nonce, accepter_nonce) = live.nonces();
        let Some(ephemeral) = live.ephemeral.take() else {
            return;
        };
        let names = SessionNames {
            network: &self.config.network,
            opener: if opener { self.config.me } else { from },
            accepter: if opener { from } else { self.config.me },
            opener_nonce,
            accepter_nonce,
        };
        let cipher = match SessionCipher::agree(&ephemeral, &opening.ephemeral, &names, opener) {
            Ok(cipher) => Arc::new(cipher),
            Err(err) => {
                warn!(peer = %from.short(), cause = %err, "peer refused at key agreement");
                self.end(from, &err.to_string(), true).await;
                return;
            }
        };
        if opener {
            self.send_preamble(from, mine, theirs, true, &ephemeral.public())
                .await;
        }

        let (outbox, frames) = mpsc::unbounded_channel();
        let id = match self.core.open(from, opener, opening.preamble, outbox).await {
            Ok(id) => id,
            Err(refused) => {
                debug!(peer = %from.short(), reason = %refused, "session not opened");
                self.end(from, &refused.to_string(), true).await;
                return;
            }
        };
        let alive = Arc::new(AtomicBool::new(true));
        let topic = self.topics.to(&from);
        let forwarder = Forwarder {
            client: self.client.clone(),
            max_payload: self.max_payload(&topic),
            topic,
            mine,
            theirs,
            cipher: cipher.clone(),
            alive: alive.clone(),
            events: self.events.clone(),
            peer: from,
        };
        tokio::spawn(forwarder.run(frames));
        let peer = self.peer(from);
        peer.backoff.reset();
        if let State::Live(live) = &mut peer.state {
            live.session = Some((id, alive));
            live.cipher = Some(cipher);
        }
        debug!(peer = %from.short(), session = id, dialed = opener, "connected over MQTT");
    }

    /// Ends whatever session or open this box has with `peer`; tells the peer if asked.
    async fn end(&mut self, peer: NodeId, reason: &str, tell: bool) {
        let Some(state) = self
            .peers
            .get_mut(&peer)
            .map(|p| std::mem::replace(&mut p.state, State::Idle))
        else {
            return;
        };
        let (mine, theirs) = match state {
            State::Idle => return,
            State::Opening { nonce, .. } => (nonce, 0),
            State::Live(live) => {
                if let Some((id, alive)) = live.session {
                    alive.store(false, Ordering::Relaxed);
                    self.core.closed(id, reason.to_owned()).await;
                    debug!(peer = %peer.short(), session = id, %reason, "disconnected");
                }
                (live.mine, live.theirs)
            }
        };
        if tell && self.connected {
            let reason = &reason.as_bytes()[..reason.len().min(256)];
            let close = Chunk::control(Kind::Close, mine, theirs, reason).encode();
            let _ = self
                .client
                .try_publish(self.topics.to(&peer), QoS::AtLeastOnce, false, close);
        }
        if let Some(peer) = self.peers.get_mut(&peer) {
            peer.next_open = Instant::now() + peer.backoff.next_wait();
        }
    }

    async fn on_tick(&mut self) {
        if !self.connected {
            return;
        }
        if !self.subscribed {
            self.subscribe();
        }
        let now = Instant::now();
        let ids: Vec<NodeId> = self.peers.keys().copied().collect();
        for id in ids {
            let Some(peer) = self.peers.get_mut(&id) else {
                continue;
            };
            if peer
                .pending
                .as_ref()
                .is_some_and(|p| now - p.last_heard > self.config.idle_timeout)
            {
                peer.pending = None;
            }
            let due = match &mut peer.state {
                State::Live(live) if now - live.last_heard > self.config.idle_timeout => {
                    Due::End("peer silent over MQTT", true)
                }
                State::Live(live) if now - live.last_sent >= self.config.ping => {
                    live.last_sent = now;
                    Due::Ping(live.mine, live.theirs)
                }
                State::Opening { sent, .. } if now - *sent > self.config.ping * 2 => {
                    Due::End("no answer to the open", false)
                }
                State::Idle if peer.configured && now >= peer.next_open => Due::Open,
                State::Idle
                    if !peer.configured && peer.next_open + self.config.idle_timeout < now =>
                {
                    Due::Forget
                }
                _ => Due::Nothing,
            };
            match due {
                Due::End(reason, tell) => self.end(id, reason, tell).await,
                Due::Ping(mine, theirs) => {
                    let ping = Chunk::control(Kind::Ping, mine, theirs, b"").encode();
                    let _ =
                        self.client
                            .try_publish(self.topics.to(&id), QoS::AtLeastOnce, false, ping);
                }
                Due::Open => self.maybe_open(id, now).await,
                Due::Forget => {
                    self.peers.remove(&id);
                }
                Due::Nothing => {}
            }
        }
    }

    /// Opens a session with a configured peer unless another transport serves it.
    async fn maybe_open(&mut self, id: NodeId, now: Instant) {
        let connected = self.core.is_connected(id).await;
        let fallback_after = self.config.fallback_after;
        let Some(peer) = self.peers.get_mut(&id) else {
            return;
        };
        if connected {
            peer.unconnected_since = None;
            peer.next_open = now + TICK * 4;
            return;
        }
        if peer.over_iroh {
            let since = *peer.unconnected_since.get_or_insert(now);
            if now - since < fallback_after {
                return;
            }
        }

        let nonce = fresh_nonce();
        peer.state = State::Opening {
            nonce,
            sent: now,
            ephemeral: Ephemeral::generate(),
        };
        let open = Chunk::control(Kind::Open, nonce, 0, b"").encode();
        if let Err(err) =
            self.client
                .try_publish(self.topics.to(&id), QoS::AtLeastOnce, false, open)
        {
            debug!(peer = %id.short(), cause = %err, "cannot queue an open");
        }
        debug!(peer = %id.short(), "opening a session over MQTT");
    }
}

/// Publishes one session's outgoing frames, in order, as chunks.
struct Forwarder {
    client: AsyncClient,
    topic: String,
    max_payload: usize,
    mine: u64,
    theirs: u64,
    cipher: Arc<SessionCipher>,
    /// Cleared when the link ends the session: nothing more is published for it.
    alive: Arc<AtomicBool>,
    events: mpsc::UnboundedSender<Event>,
    peer: NodeId,
}

impl Forwarder {
    async fn run(self, mut frames: mpsc::UnboundedReceiver<Vec<u8>>) {
        // Frame 0 was the preamble, published by the link. A frame number is a nonce of the
        // session's key: the session ends before one would be used twice.
        let mut number = 1u32;
        while let Some(frame) = frames.recv().await {
            if number == u32::MAX {
                break;
            }
            let sealed = self.cipher.seal(number, &frame);
            for bytes in chunk::split(&sealed, number, self.mine, self.theirs, self.max_payload) {
                if !self.alive.load(Ordering::Relaxed) {
                    return;
                }
                let published = self
                    .client
                    .publish(&self.topic, QoS::AtLeastOnce, false, bytes)
                    .await;
                if published.is_err() {
                    return;
                }
            }
            number += 1;
        }
        // The core dropped the outbox: the session is over on this side.
        if self.alive.load(Ordering::Relaxed) {
            let _ = self.events.send(Event::Ended {
                peer: self.peer,
                mine: self.mine,
            });
        }
    }
}
