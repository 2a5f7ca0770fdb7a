//! The discrete-event engine: boxes holding real replicas, links carrying real session
//! frames, and one queue of events in virtual time.
//!
//! Events are keyed by (time in µs, sequence number), so two events at the same instant run
//! in the order they were scheduled and a run depends only on the scenario and the seed.
//!
//! A link is *connected* while its availability allows, no partition covers it, both boxes
//! are up and it is not waiting to reconnect after a break. Each connection gets a new
//! generation number; frames of an older generation are dropped on arrival, as a closed
//! socket drops them. A frame takes `bytes / bandwidth` to leave (frames queue behind each
//! other per direction) and `latency` to arrive. A lost frame breaks the connection (a
//! stream transport cannot skip it), which reopens after the link's `reconnect_s`.

use std::collections::{BTreeMap, BTreeSet};

use crdt_model::replica::VerifiedSignatures;
use crdt_model::session::{DEFAULT_ROUND_BUDGET_BYTES, ScopeFilter, Session, SessionConfig};
use crdt_model::{FeedId, Identity, MemStore, NodeId, Replica, Scope};
use provisioning::policy::{Policy, Role};

mod availability;
mod bridge;

use crate::SimError;
use crate::metrics::Metrics;
use crate::rng::Rng;
use crate::scenario::{Availability, Fault, LinkClass, Scenario};
use crate::workload::{Work, WorkState};

/// Virtual time, in microseconds since the start of the run.
pub type Micros = u64;

pub const SECOND: Micros = 1_000_000;
pub const HOUR: Micros = 3600 * SECOND;

pub fn hours(h: f64) -> Micros {
    (h * HOUR as f64).round().max(0.0) as Micros
}

pub fn secs(s: f64) -> Micros {
    (s * SECOND as f64).round().max(0.0) as Micros
}

pub fn minutes(m: f64) -> Micros {
    secs(m * 60.0)
}

/// How often agreement is probed after a mainland link returns.
const PROBE: Micros = 5 * SECOND;

/// Documents a replica keeps decoded in memory: a box's default (`store.cache_docs`). A
/// decoded document takes about 19 KiB however small it is stored, so this is most of the
/// simulator's memory. Measured on the holiday (release, mimalloc): 256 took 43 s and
/// 456 MiB, 1,024 took 40 s and 596 MiB, 2,048 no less time and 759 MiB; the misses left are
/// passes redeemed hours after their sale, which only a cache of every pass would keep.
const CACHE_DOCS: usize = 1024;

/// Editable document copies kept per box: about as many as a box's hot documents (the
/// sailings and wallets it works on).
const WORKING_COPIES: std::num::NonZeroUsize = std::num::NonZeroUsize::new(128).unwrap();

/// One box: a replica over an in-memory store, and what its role lets it hold.
pub(crate) struct SimBox {
    pub name: String,
    pub role: Role,
    pub site: String,
    pub node: NodeId,
    /// Kept to reopen the replica after a crash under the same identity, and to sign the
    /// box's own writes (`bridge.rs`).
    identity: Identity,
    pub replica: Replica<MemStore>,
    /// Scopes it may be sent (read or carry).
    pub receives: BTreeSet<Scope>,
    pub reads: BTreeSet<Scope>,
    pub up: bool,
    /// Head seq of every feed as last seen, to tell which entries just arrived.
    known: BTreeMap<FeedId, u64>,
    /// Editable copies of the documents the workload and the checks last used here, kept
    /// up to date by applying what the replica gained since (`bridge.rs`).
    pub(super) working: lru::LruCache<crdt_model::DocKey, automerge::AutoCommit>,
}

impl std::fmt::Debug for SimBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimBox")
            .field("name", &self.name)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

/// One link and its two sessions (`sessions[0]` at end `a`, talking to `b`).
#[derive(Debug)]
pub(crate) struct SimLink {
    pub name: String,
    pub ends: [usize; 2],
    pub class: LinkClass,
    bandwidth: f64,
    latency: Micros,
    loss: f64,
    corrupt: f64,
    pub max_message_bytes: usize,
    reconnect: Micros,
    pub filter: ScopeFilter,
    availability: Availability,
    pub avail_up: bool,
    partitions: u32,
    broken: bool,
    pub connected: bool,
    generation: u64,
    sessions: [Option<Session>; 2],
    busy_until: [Micros; 2],
    /// When the current disconnection began, for the outage timeline.
    pub down_since: Option<Micros>,
}

#[derive(Debug)]
pub(crate) enum Event {
    Deliver {
        link: usize,
        from_end: usize,
        generation: u64,
        frame: Vec<u8>,
    },
    /// A frame was lost in flight: the receiver notices the broken stream now.
    Broken {
        link: usize,
        generation: u64,
    },
    Reconnect {
        link: usize,
    },
    /// A link's own availability changes (schedule, random process or ferry).
    Availability {
        link: usize,
        up: bool,
    },
    /// All links of a random-outage group change together.
    Group {
        group: String,
        up: bool,
    },
    FaultStart(usize),
    FaultEnd(usize),
    Work(Work),
    /// Checks whether the island agrees again after the mainland link came back.
    AgreementProbe,
    /// The end of the scenario's duration: heal everything and let the replicas settle.
    Heal,
}

/// The whole simulated island.
pub(crate) struct World {
    pub scenario: Scenario,
    pub seed: u64,
    pub now: Micros,
    pub end: Micros,
    pub deadline: Micros,
    queue: BTreeMap<(Micros, u64), Event>,
    next_seq: u64,
    /// Deliveries, breaks and reconnects still queued: zero after the heal means settled.
    in_flight: usize,
    pub boxes: Vec<SimBox>,
    pub links: Vec<SimLink>,
    pub healed: bool,
    pub settled_at: Option<Micros>,
    link_rng: Rng,
    pub work_rng: Rng,
    pub work: WorkState,
    pub metrics: Metrics,
    /// Every acknowledged write: per feed, the virtual time of each seq (index seq - 1).
    pub writes: BTreeMap<FeedId, Vec<Micros>>,
    /// Set while waiting for the island to agree again after a mainland link returned.
    agreement_since: Option<Micros>,
    /// A check failed: the run stops.
    pub failure: Option<crate::CheckFailure>,
    /// The link whose frame is being handled, to attribute arrivals to it.
    arriving_over: Option<usize>,
    pub box_index: BTreeMap<String, usize>,
    /// Signatures one box verified, which the others need not verify again.
    verified: VerifiedSignatures,
}

impl std::fmt::Debug for World {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("World")
            .field("scenario", &self.scenario.name)
            .field("seed", &self.seed)
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

/// A box's replica over `store`, sharing the signatures the island's boxes verified.
fn open_replica(
    identity: &Identity,
    store: MemStore,
    verified: &VerifiedSignatures,
) -> Result<Replica<MemStore>, SimError> {
    let mut replica = Replica::open(identity.clone(), store, CACHE_DOCS)?;
    replica.share_verified(verified.clone());
    Ok(replica)
}

fn identity_secret(name: &str) -> [u8; 32] {
    *blake3::hash(format!("culao-sim box {name}").as_bytes()).as_bytes()
}

impl World {
    pub fn new(scenario: Scenario, seed: u64) -> Result<Self, SimError> {
        let policy = Policy::standard();
        let verified = VerifiedSignatures::new();
        let mut boxes = Vec::new();
        let mut box_index = BTreeMap::new();
        for spec in &scenario.boxes {
            let role: Role = spec
                .role
                .parse()
                .map_err(|_| SimError::Internal(format!("role {} after validation", spec.role)))?;
            let secret = identity_secret(&spec.name);
            let identity = Identity::from_secret_bytes(secret);
            let node = identity.node_id();
            let replica = open_replica(&identity, MemStore::new(), &verified)?;
            let access = policy.access(role);
            let receives = access.read.union(&access.carry).cloned().collect();
            box_index.insert(spec.name.clone(), boxes.len());
            boxes.push(SimBox {
                name: spec.name.clone(),
                role,
                site: spec.site.clone(),
                node,
                identity,
                replica,
                receives,
                reads: access.read,
                up: true,
                known: BTreeMap::new(),
                working: lru::LruCache::new(WORKING_COPIES),
            });
        }

        let mut links = Vec::new();
        for spec in &scenario.links {
            let ends = [box_index[&spec.a], box_index[&spec.b]];
            let filter = if scenario.knobs.ignore_roles {
                ScopeFilter::All
            } else {
                let shared = boxes[ends[0]]
                    .receives
                    .intersection(&boxes[ends[1]].receives)
                    .cloned()
                    .collect();
                ScopeFilter::Only(shared)
            };
            links.push(SimLink {
                name: spec.display_name(),
                ends,
                class: spec.class,
                bandwidth: spec.bandwidth_bytes_per_s,
                latency: secs(spec.latency_ms / 1000.0),
                loss: spec.loss,
                corrupt: spec.corrupt,
                max_message_bytes: spec.max_message_bytes,
                reconnect: secs(spec.reconnect_s),
                filter,
                availability: spec.availability.clone(),
                avail_up: true,
                partitions: 0,
                broken: false,
                connected: false,
                generation: 0,
                sessions: [None, None],
                busy_until: [0, 0],
                down_since: Some(0),
            });
        }

        let end = hours(scenario.duration_h);
        let deadline = end + hours(scenario.settle_h);
        let metrics = Metrics::new(&scenario, &boxes, &links);
        let mut world = Self {
            seed,
            now: 0,
            end,
            deadline,
            queue: BTreeMap::new(),
            next_seq: 0,
            in_flight: 0,
            boxes,
            links,
            healed: false,
            settled_at: None,
            link_rng: Rng::stream(seed, "links"),
            work_rng: Rng::stream(seed, "workload"),
            work: WorkState::default(),
            metrics,
            writes: BTreeMap::new(),
            agreement_since: None,
            failure: None,
            arriving_over: None,
            box_index,
            verified,
            scenario,
        };
        world.schedule_availability()?;
        world.schedule_faults();
        world.schedule(end, Event::Heal);
        world.setup_workload()?;
        for link in 0..world.links.len() {
            world.refresh(link);
        }
        Ok(world)
    }

    pub fn schedule(&mut self, at: Micros, event: Event) {
        if matches!(
            event,
            Event::Deliver { .. } | Event::Broken { .. } | Event::Reconnect { .. }
        ) {
            self.in_flight += 1;
        }
        self.queue.insert((at, self.next_seq), event);
        self.next_seq += 1;
    }

    /// Runs until the replicas settle after the heal, the deadline passes or a check fails.
    pub fn run(&mut self, mut progress: impl FnMut(Micros, Micros)) -> Result<(), SimError> {
        let mut reported = 0;
        while let Some(((at, _), event)) = self.queue.pop_first() {
            if at > self.deadline {
                break;
            }
            self.now = at;
            if matches!(
                event,
                Event::Deliver { .. } | Event::Broken { .. } | Event::Reconnect { .. }
            ) {
                self.in_flight -= 1;
            }
            self.handle(event)?;
            if self.failure.is_some() {
                return Ok(());
            }
            if self.healed && self.in_flight == 0 {
                self.settled_at = Some(self.now);
                break;
            }
            let step = self.deadline / 50 + 1;
            if self.now / step > reported {
                reported = self.now / step;
                progress(self.now, self.deadline);
            }
        }
        Ok(())
    }

    fn handle(&mut self, event: Event) -> Result<(), SimError> {
        match event {
            Event::Deliver {
                link,
                from_end,
                generation,
                frame,
            } => self.deliver(link, from_end, generation, &frame)?,
            Event::Broken { link, generation } => {
                if self.links[link].generation == generation && self.links[link].connected {
                    self.metrics.links[link].losses += 1;
                    self.break_link(link);
                }
            }
            Event::Reconnect { link } => {
                self.links[link].broken = false;
                self.refresh(link);
            }
            Event::Availability { link, up } => {
                self.links[link].avail_up = up;
                self.refresh(link);
                self.next_availability(link, up);
            }
            Event::Group { group, up } => {
                for link in 0..self.links.len() {
                    if matches!(&self.links[link].availability,
                        Availability::Random { group: Some(g), .. } if *g == group)
                    {
                        self.links[link].avail_up = up;
                        self.refresh(link);
                    }
                }
                self.next_group(&group, up);
            }
            Event::FaultStart(index) => self.fault(index, true)?,
            Event::FaultEnd(index) => self.fault(index, false)?,
            Event::Work(work) => {
                if self.now < self.end {
                    self.do_work(work)?;
                }
            }
            Event::AgreementProbe => self.probe_agreement(),
            Event::Heal => self.heal()?,
        }
        Ok(())
    }

    // ---- links ----

    fn link_wanted(&self, link: usize) -> bool {
        let l = &self.links[link];
        let boxes_up = self.boxes[l.ends[0]].up && self.boxes[l.ends[1]].up;
        if self.healed {
            return boxes_up && !l.broken;
        }
        boxes_up && l.avail_up && l.partitions == 0 && !l.broken
    }

    /// Connects or disconnects a link to match what its state allows.
    pub fn refresh(&mut self, link: usize) {
        let wanted = self.link_wanted(link);
        if wanted == self.links[link].connected {
            return;
        }
        if wanted {
            self.connect(link);
        } else {
            self.disconnect(link);
        }
    }

    fn connect(&mut self, link: usize) {
        let now = self.now;
        let l = &mut self.links[link];
        l.connected = true;
        l.generation += 1;
        if let Some(since) = l.down_since.take() {
            if now > since {
                self.metrics.links[link].outages.push((since, now));
            }
            if l.class == LinkClass::MainlandRadio
                && now > since + 60 * SECOND
                && now < self.end
                && self.agreement_since.is_none()
            {
                self.agreement_since = Some(now);
                self.schedule(now + PROBE, Event::AgreementProbe);
            }
        }
        let l = &mut self.links[link];
        l.busy_until = [now, now];
        let budget = DEFAULT_ROUND_BUDGET_BYTES.min(l.max_message_bytes / 2);
        let mut hellos = Vec::new();
        for end in 0..2 {
            let me = l.ends[end];
            let peer = l.ends[1 - end];
            let config = SessionConfig {
                round_budget_bytes: budget,
                filter: l.filter.clone(),
                ..SessionConfig::default()
            };
            let mut session = Session::new(self.boxes[peer].node, config);
            let hello = session.start(&self.boxes[me].replica);
            hellos.push(session.encode(vec![hello]));
            l.sessions[end] = Some(session);
        }
        for (end, frames) in hellos.into_iter().enumerate() {
            self.send(link, end, frames);
        }
        self.metrics.links[link].connections += 1;
    }

    fn disconnect(&mut self, link: usize) {
        let l = &mut self.links[link];
        l.connected = false;
        l.generation += 1;
        l.sessions = [None, None];
        l.down_since = Some(self.now);
    }

    /// A session refused what its peer sent: counted per kind, and the link's connection
    /// is broken (it reopens with fresh sessions, as a real box's would).
    fn session_failed(&mut self, link: usize, err: &crdt_model::SessionError) {
        let kind = session_error_kind(err);
        *self.metrics.links[link]
            .session_errors
            .entry(kind.to_owned())
            .or_default() += 1;
        self.break_link(link);
    }

    /// The connection broke (a lost or refused frame): close it, reopen after a delay.
    fn break_link(&mut self, link: usize) {
        self.links[link].broken = true;
        self.disconnect(link);
        let at = self.now + self.links[link].reconnect;
        self.schedule(at, Event::Reconnect { link });
    }

    /// Puts frames on the wire from end `from_end` of a link.
    fn send(&mut self, link: usize, from_end: usize, frames: Vec<Vec<u8>>) {
        for mut frame in frames {
            let l = &mut self.links[link];
            if !l.connected {
                return;
            }
            let len = frame.len();
            if len > l.max_message_bytes {
                self.metrics.links[link].oversized += 1;
                self.break_link(link);
                return;
            }
            let start = self.now.max(l.busy_until[from_end]);
            let transmit = secs(len as f64 / l.bandwidth);
            l.busy_until[from_end] = start + transmit;
            let arrival = start + transmit + l.latency;
            let generation = l.generation;
            let lost = self.link_rng.chance(l.loss);
            let corrupt = self.link_rng.chance(l.corrupt);
            self.metrics.on_send(link, from_end, len, start, transmit);
            if lost {
                self.schedule(arrival, Event::Broken { link, generation });
                return;
            }
            if corrupt && !frame.is_empty() {
                let at = self.link_rng.below(frame.len());
                frame[at] ^= 1 << self.link_rng.below(8);
                self.metrics.links[link].corrupted += 1;
            }
            let event = Event::Deliver {
                link,
                from_end,
                generation,
                frame,
            };
            self.schedule(arrival, event);
        }
    }

    fn deliver(
        &mut self,
        link: usize,
        from_end: usize,
        generation: u64,
        frame: &[u8],
    ) -> Result<(), SimError> {
        let to_end = 1 - from_end;
        let l = &mut self.links[link];
        if l.generation != generation || !l.connected {
            return Ok(());
        }
        let receiver = l.ends[to_end];
        let Some(session) = l.sessions[to_end].as_mut() else {
            return Ok(());
        };
        let replica = &mut self.boxes[receiver].replica;
        match session.on_frame(replica, frame) {
            Ok(replies) => {
                replica.commit()?;
                self.send(link, to_end, replies);
                self.arriving_over = Some(link);
                let announced = self.announce(receiver);
                self.arriving_over = None;
                announced
            }
            Err(err) => {
                self.session_failed(link, &err);
                Ok(())
            }
        }
    }

    /// After a box's heads moved: measure what arrived, check it may hold it, and tell
    /// every live session of the box.
    pub fn announce(&mut self, b: usize) -> Result<(), SimError> {
        let advanced = self.boxes[b].replica.take_advanced();
        if advanced.is_empty() {
            return Ok(());
        }
        for feed in &advanced {
            let bx = &mut self.boxes[b];
            let new = bx.replica.heads().seq(feed);
            let old = bx.known.insert(feed.clone(), new).unwrap_or(0);
            if feed.origin == bx.node {
                continue;
            }
            let bx = &self.boxes[b];
            if !bx.receives.contains(&feed.scope) {
                let account = format!(
                    "box {} ({}) received entries of scope {} from {}, which its role may \
                     neither read nor carry",
                    bx.name,
                    bx.role,
                    feed.scope,
                    self.name_of(&feed.origin)
                );
                self.fail("no record where it may not be read", account);
                return Ok(());
            }
            let times = self.writes.get(feed).map(Vec::as_slice).unwrap_or(&[]);
            for seq in old + 1..=new {
                if let Some(written) = times.get(seq as usize - 1) {
                    let lag = self.now.saturating_sub(*written);
                    let over = self.arriving_over;
                    self.metrics.on_arrival(&feed.scope, b, over, self.now, lag);
                }
            }
        }

        for link in 0..self.links.len() {
            let l = &mut self.links[link];
            let Some(end) = l.ends.iter().position(|e| *e == b) else {
                continue;
            };
            let Some(session) = l.sessions[end].as_mut() else {
                continue;
            };
            let replica = &mut self.boxes[b].replica;
            match session.on_local_change(replica, &advanced) {
                Ok(messages) => {
                    let frames = session.encode(messages);
                    self.send(link, end, frames);
                }
                Err(err) => self.session_failed(link, &err),
            }
        }
        Ok(())
    }

    pub fn name_of(&self, node: &NodeId) -> String {
        self.boxes
            .iter()
            .find(|b| b.node == *node)
            .map_or_else(|| node.short(), |b| b.name.clone())
    }

    pub fn fail(&mut self, check: &'static str, account: String) {
        if self.failure.is_none() {
            self.failure = Some(crate::CheckFailure {
                seed: self.seed,
                check,
                at_s: self.now as f64 / SECOND as f64,
                account,
            });
        }
    }

    // ---- faults ----

    fn schedule_faults(&mut self) {
        for (index, fault) in self.scenario.faults.clone().iter().enumerate() {
            let (at_h, for_h) = match fault {
                Fault::Crash { at_h, for_h, .. }
                | Fault::PowerCut { at_h, for_h, .. }
                | Fault::Partition { at_h, for_h, .. } => (*at_h, *for_h),
            };
            self.schedule(hours(at_h), Event::FaultStart(index));
            self.schedule(hours(at_h + for_h), Event::FaultEnd(index));
        }
    }

    fn fault(&mut self, index: usize, start: bool) -> Result<(), SimError> {
        if self.healed {
            return Ok(());
        }
        match self.scenario.faults[index].clone() {
            Fault::Crash { box_name, .. } => {
                let b = self.box_index[&box_name];
                self.set_box_up(b, !start)?;
            }
            Fault::PowerCut { site, .. } => {
                let hit: Vec<usize> = (0..self.boxes.len())
                    .filter(|b| self.boxes[*b].site == site)
                    .collect();
                for b in hit {
                    self.set_box_up(b, !start)?;
                }
            }
            Fault::Partition { links, .. } => {
                for name in links {
                    let Some(link) = self.links.iter().position(|l| l.name == name) else {
                        continue;
                    };
                    let l = &mut self.links[link];
                    if start {
                        l.partitions += 1;
                    } else {
                        l.partitions = l.partitions.saturating_sub(1);
                    }
                    self.refresh(link);
                }
            }
        }
        Ok(())
    }

    /// Stops or restarts a box. A restart reopens the replica from its store: sessions and
    /// anything uncommitted are gone, every committed entry is still there.
    fn set_box_up(&mut self, b: usize, up: bool) -> Result<(), SimError> {
        if self.boxes[b].up == up {
            return Ok(());
        }
        let now = self.now;
        let bx = &mut self.boxes[b];
        bx.up = up;
        if up {
            let store = bx.replica.store().clone();
            bx.replica = open_replica(&bx.identity, store, &self.verified)?;
            self.metrics.boxes[b].restarts += 1;
            if let Some(since) = self.metrics.boxes[b].down_since.take() {
                self.metrics.boxes[b].outages.push((since, now));
            }
        } else {
            self.metrics.boxes[b].down_since = Some(now);
        }
        for link in 0..self.links.len() {
            if self.links[link].ends.contains(&b) {
                self.refresh(link);
            }
        }
        Ok(())
    }

    fn heal(&mut self) -> Result<(), SimError> {
        self.healed = true;
        for b in 0..self.boxes.len() {
            self.set_box_up(b, true)?;
        }
        for link in 0..self.links.len() {
            self.refresh(link);
        }
        if let Some(since) = self.agreement_since.take() {
            self.metrics.agreements.push(crate::metrics::Agreement {
                link_back_s: since as f64 / SECOND as f64,
                agreed_after_s: None,
            });
        }
        Ok(())
    }

    // ---- agreement after the mainland link returns ----

    fn probe_agreement(&mut self) {
        let Some(since) = self.agreement_since else {
            return;
        };
        let mainland_up = self
            .links
            .iter()
            .any(|l| l.class == LinkClass::MainlandRadio && l.connected);
        if !mainland_up {
            self.agreement_since = None;
            self.metrics.agreements.push(crate::metrics::Agreement {
                link_back_s: since as f64 / SECOND as f64,
                agreed_after_s: None,
            });
            return;
        }
        if self.island_agrees() {
            self.agreement_since = None;
            self.metrics.agreements.push(crate::metrics::Agreement {
                link_back_s: since as f64 / SECOND as f64,
                agreed_after_s: Some((self.now - since) as f64 / SECOND as f64),
            });
        } else {
            self.schedule(self.now + PROBE, Event::AgreementProbe);
        }
    }

    /// Every box connected to the hub (per scope, over links that carry the scope) holds
    /// what the hub holds of that scope.
    fn island_agrees(&self) -> bool {
        let Some(hub) = self.boxes.iter().position(|b| b.role == Role::Hub) else {
            return true;
        };
        let scopes: BTreeSet<Scope> = self.boxes[hub].receives.clone();
        for scope in &scopes {
            let members = self.component(hub, scope, true);
            let want = self.boxes[hub]
                .replica
                .heads()
                .vector(|f| &f.scope == scope);
            for b in members {
                let have = self.boxes[b].replica.heads().vector(|f| &f.scope == scope);
                if have != want {
                    return false;
                }
            }
        }
        true
    }

    /// Boxes that may receive `scope` and are reachable from `from` over links carrying it
    /// (only connected links if `connected_only`).
    pub fn component(&self, from: usize, scope: &Scope, connected_only: bool) -> Vec<usize> {
        let mut seen = BTreeSet::from([from]);
        let mut stack = vec![from];
        while let Some(b) = stack.pop() {
            for l in &self.links {
                if connected_only && !l.connected {
                    continue;
                }
                let feed = FeedId {
                    origin: self.boxes[b].node,
                    scope: scope.clone(),
                };
                if !l.filter.allows(&feed) {
                    continue;
                }
                let Some(end) = l.ends.iter().position(|e| *e == b) else {
                    continue;
                };
                let other = l.ends[1 - end];
                let may =
                    self.boxes[other].receives.contains(scope) || self.scenario.knobs.ignore_roles;
                if may && seen.insert(other) {
                    stack.push(other);
                }
            }
        }
        seen.into_iter().collect()
    }
}

fn session_error_kind(err: &crdt_model::SessionError) -> &'static str {
    use crdt_model::SessionError as E;
    match err {
        E::Wire(_) => "malformed",
        E::Receive(_) => "refused-entries",
        E::Replica(_) => "replica",
        E::PeerMismatch { .. } => "peer-mismatch",
        E::Unexpected { .. } => "unexpected",
        E::ForeignScope { .. } => "foreign-scope",
        E::RefusedByPeer(_) => "refused-by-peer",
        _ => "other",
    }
}
