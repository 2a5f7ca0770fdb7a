//! Replicas that write while their links drop, duplicate, reorder and partition messages
//! converge once connected, and lose no acknowledged write.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use automerge::transaction::Transactable;
use automerge::{ChangeHash, ROOT, ReadDoc};
use crdt_model::session::{Session, SessionConfig};
use crdt_model::{DocId, DocKey, Identity, MemStore, NodeId, Replica, Scope};
use proptest::prelude::*;

/// A simulated network of replicas with one session per connected pair.
struct Net {
    replicas: Vec<Replica<MemStore>>,
    ids: Vec<NodeId>,
    /// sessions[(a, b)]: a's session with b.
    sessions: BTreeMap<(usize, usize), Session>,
    /// Messages in flight from a to b.
    links: BTreeMap<(usize, usize), VecDeque<Vec<u8>>>,
    cut: BTreeSet<(usize, usize)>,
    /// Every acknowledged write: (writer, document, change hash).
    acknowledged: Vec<(usize, DocKey, ChangeHash)>,
    budget: usize,
}

impl Net {
    fn new(n: usize, budget: usize) -> Self {
        let replicas: Vec<_> = (0..n)
            .map(|i| {
                Replica::open(
                    Identity::from_secret_bytes([i as u8 + 1; 32]),
                    MemStore::new(),
                    8,
                )
                .unwrap()
            })
            .collect();
        let ids = replicas.iter().map(|r| r.node_id()).collect();
        let mut net = Self {
            replicas,
            ids,
            sessions: BTreeMap::new(),
            links: BTreeMap::new(),
            cut: BTreeSet::new(),
            acknowledged: Vec::new(),
            budget,
        };
        for a in 0..n {
            for b in a + 1..n {
                net.connect(a, b);
            }
        }
        net
    }

    fn pair(a: usize, b: usize) -> (usize, usize) {
        (a.min(b), a.max(b))
    }

    fn connect(&mut self, a: usize, b: usize) {
        for (x, y) in [(a, b), (b, a)] {
            let config = SessionConfig {
                round_budget_bytes: self.budget,
                ..Default::default()
            };
            let mut session = Session::new(self.ids[y], config);
            let hello = session.start(&self.replicas[x]);
            let frames = session.encode(vec![hello]);
            self.sessions.insert((x, y), session);
            self.links.insert((x, y), frames.into());
        }
    }

    /// Ends the session between a and b (as a broken connection would) and, unless the pair
    /// is cut, opens a new one.
    fn reset(&mut self, a: usize, b: usize) {
        for key in [(a, b), (b, a)] {
            self.sessions.remove(&key);
            self.links.remove(&key);
        }
        if !self.cut.contains(&Self::pair(a, b)) {
            self.connect(a, b);
        }
    }

    fn send(&mut self, from: usize, to: usize, frames: Vec<Vec<u8>>) {
        if let Some(queue) = self.links.get_mut(&(from, to)) {
            queue.extend(frames);
        }
    }

    /// After replica `r`'s heads moved, every session of `r` hears of it.
    fn announce(&mut self, r: usize) {
        let advanced = self.replicas[r].take_advanced();
        if advanced.is_empty() {
            return;
        }
        let peers: Vec<usize> = self
            .sessions
            .keys()
            .filter(|(a, _)| *a == r)
            .map(|(_, b)| *b)
            .collect();
        for peer in peers {
            let Some(session) = self.sessions.get_mut(&(r, peer)) else {
                continue;
            };
            match session.on_local_change(&mut self.replicas[r], &advanced) {
                Ok(messages) => {
                    let frames = session.encode(messages);
                    self.send(r, peer, frames);
                }
                Err(_) => self.reset(r, peer),
            }
        }
    }

    fn write(&mut self, r: usize, doc: u8, field: u8, value: i64) {
        let key = DocKey {
            scope: scope(doc),
            doc: DocId::from_bytes([doc; 16]),
        };
        let receipt = self.replicas[r]
            .write(&key, 1_700_000_000, |tx| {
                tx.put(ROOT, format!("f{field}"), value)
            })
            .unwrap();
        self.replicas[r].commit().unwrap();
        if receipt.is_some() {
            let doc = self.replicas[r].doc(&key).unwrap().unwrap();
            let hash = doc.get_heads().into_iter().next().unwrap();
            self.acknowledged.push((r, key, hash));
        }
        self.announce(r);
    }

    /// Delivers the message at `index` of the queue from a to b (reordering if not first).
    fn deliver(&mut self, a: usize, b: usize, index: usize) -> bool {
        let Some(queue) = self.links.get_mut(&(a, b)) else {
            return false;
        };
        if queue.is_empty() {
            return false;
        }
        let frame = queue.remove(index % queue.len()).unwrap();
        let Some(session) = self.sessions.get_mut(&(b, a)) else {
            return false;
        };
        match session.on_frame(&mut self.replicas[b], &frame) {
            Ok(replies) => {
                self.replicas[b].commit().unwrap();
                self.send(b, a, replies);
                self.announce(b);
            }
            Err(_) => self.reset(a, b),
        }
        true
    }

    fn duplicate(&mut self, a: usize, b: usize) {
        if let Some(queue) = self.links.get_mut(&(a, b))
            && let Some(front) = queue.front().cloned()
        {
            queue.push_back(front);
        }
    }

    fn drop_message(&mut self, a: usize, b: usize) {
        // A lost message breaks its stream: the transport ends the connection.
        if self
            .links
            .get_mut(&(a, b))
            .and_then(|q| q.pop_front())
            .is_some()
        {
            self.reset(a, b);
        }
    }

    /// Restarts replica r from its store, as after a crash with everything committed.
    fn restart(&mut self, r: usize) {
        let store = self.replicas[r].store().clone();
        let identity = Identity::from_secret_bytes([r as u8 + 1; 32]);
        self.replicas[r] = Replica::open(identity, store, 8).unwrap();
        let peers: Vec<usize> = (0..self.ids.len()).filter(|p| *p != r).collect();
        for p in peers {
            self.reset(r, p);
        }
    }

    /// Heals every cut and delivers in order until no message is left; panics if that takes
    /// more than `max_steps` deliveries.
    fn heal_and_settle(&mut self, max_steps: usize) {
        let cut: Vec<_> = std::mem::take(&mut self.cut).into_iter().collect();
        for (a, b) in cut {
            self.reset(a, b);
        }
        for _ in 0..max_steps {
            let next = self
                .links
                .iter()
                .find(|(_, q)| !q.is_empty())
                .map(|(k, _)| *k);
            let Some((a, b)) = next else { return };
            self.deliver(a, b, 0);
        }
        panic!("replicas still talking after {max_steps} deliveries");
    }

    fn assert_converged(&mut self) {
        let n = self.replicas.len();
        let first = self.replicas[0].heads().vector(|_| true);
        for r in 1..n {
            assert_eq!(
                self.replicas[r].heads().vector(|_| true),
                first,
                "vectors of 0 and {r}"
            );
        }
        for r in 0..n {
            assert_eq!(
                self.replicas[r].waiting_changes(),
                0,
                "replica {r} has waiting changes"
            );
        }
        let keys: BTreeSet<DocKey> = self
            .acknowledged
            .iter()
            .map(|(_, k, _)| k.clone())
            .collect();
        for key in keys {
            let mut heads = None;
            for r in 0..n {
                let doc = self.replicas[r]
                    .doc(&key)
                    .unwrap()
                    .unwrap_or_else(|| panic!("{key} missing on replica {r}"));
                let mut h = doc.get_heads();
                h.sort();
                match &heads {
                    None => heads = Some(h),
                    Some(expected) => assert_eq!(&h, expected, "heads of {key} on replica {r}"),
                }
            }
        }
        for (writer, key, hash) in self.acknowledged.clone() {
            for r in 0..n {
                let doc = self.replicas[r].doc(&key).unwrap().unwrap();
                assert!(
                    doc.get_change_by_hash(&hash).is_some(),
                    "write by {writer} to {key} missing on {r}"
                );
            }
        }
    }
}

fn scope(doc: u8) -> Scope {
    Scope::new(["tickets", "health", "radio"][doc as usize % 3]).unwrap()
}

#[derive(Clone, Debug)]
enum Step {
    Write {
        replica: usize,
        doc: u8,
        field: u8,
        value: i64,
    },
    Deliver {
        from: usize,
        to: usize,
        index: usize,
    },
    Duplicate {
        from: usize,
        to: usize,
    },
    Drop {
        from: usize,
        to: usize,
    },
    Partition {
        a: usize,
        b: usize,
    },
    Heal,
    Restart {
        replica: usize,
    },
}

fn step(n: usize) -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..n, 0u8..12, 0u8..4, any::<i64>()).prop_map(|(replica, doc, field, value)| Step::Write { replica, doc, field, value }),
        8 => (0..n, 0..n, 0usize..4).prop_map(|(from, to, index)| Step::Deliver { from, to, index }),
        1 => (0..n, 0..n).prop_map(|(from, to)| Step::Duplicate { from, to }),
        1 => (0..n, 0..n).prop_map(|(from, to)| Step::Drop { from, to }),
        1 => (0..n, 0..n).prop_map(|(a, b)| Step::Partition { a, b }),
        1 => Just(Step::Heal),
        1 => (0..n).prop_map(|replica| Step::Restart { replica }),
    ]
}

fn scenario() -> impl Strategy<Value = (usize, usize, Vec<Step>)> {
    (
        3usize..=5,
        prop_oneof![Just(200usize), Just(4096), Just(1 << 18)],
    )
        .prop_flat_map(|(n, budget)| {
            (
                Just(n),
                Just(budget),
                proptest::collection::vec(step(n), 1..120),
            )
        })
}

fn run(n: usize, budget: usize, steps: Vec<Step>) {
    let mut net = Net::new(n, budget);
    for step in steps {
        match step {
            Step::Write {
                replica,
                doc,
                field,
                value,
            } => net.write(replica, doc, field, value),
            Step::Deliver { from, to, index } if from != to => {
                net.deliver(from, to, index);
            }
            Step::Duplicate { from, to } if from != to => net.duplicate(from, to),
            Step::Drop { from, to } if from != to => net.drop_message(from, to),
            Step::Partition { a, b } if a != b => {
                net.cut.insert(Net::pair(a, b));
                for key in [(a, b), (b, a)] {
                    net.sessions.remove(&key);
                    net.links.remove(&key);
                }
            }
            Step::Heal => {
                let cut: Vec<_> = std::mem::take(&mut net.cut).into_iter().collect();
                for (a, b) in cut {
                    net.reset(a, b);
                }
            }
            Step::Restart { replica } => net.restart(replica),
            _ => {}
        }
    }
    net.heal_and_settle(200_000);
    net.assert_converged();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn replicas_converge_after_faults_and_keep_every_acknowledged_write((n, budget, steps) in scenario()) {
        run(n, budget, steps);
    }
}

#[test]
fn a_chain_relays_writes_end_to_end() {
    // 0 - 1 - 2, with 0 and 2 never connected.
    let mut net = Net::new(3, 1 << 18);
    net.cut.insert((0, 2));
    net.reset(0, 2);
    for i in 0..50 {
        net.write(0, i, 0, i64::from(i));
    }
    net.write(2, 200, 1, 7);
    net.heal_and_settle_without_healing();
    net.assert_converged();
}

impl Net {
    fn heal_and_settle_without_healing(&mut self) {
        let cut = self.cut.clone();
        self.heal_and_settle(100_000);
        self.cut = cut;
    }
}

#[test]
fn an_in_sync_pair_confirms_it_with_two_small_messages() {
    let mut net = Net::new(2, 1 << 18);
    for i in 0..20 {
        net.write(0, i, 0, 1);
        net.write(1, i + 100, 0, 1);
    }
    net.heal_and_settle(10_000);
    net.reset(0, 1);
    let queued: Vec<usize> = net
        .links
        .values()
        .flat_map(|q| q.iter().map(Vec::len))
        .collect();
    assert_eq!(queued.len(), 2, "one hello each way");
    net.heal_and_settle(10);
    let stats = net.sessions[&(0, 1)].stats();
    assert_eq!(stats.messages_out, 1);
    assert_eq!(stats.messages_in, 1);
    assert!(stats.bytes_out < 100, "{stats:?}");
}
