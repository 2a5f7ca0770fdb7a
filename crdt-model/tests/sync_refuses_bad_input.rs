//! Every kind of bad input is refused with its own typed error, and nothing of it is applied.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

use automerge::transaction::Transactable;
use automerge::{ActorId, ROOT};
use crdt_model::entry::{EntryError, EntryHash, Signature};
use crdt_model::replica::ReceiveError;
use crdt_model::session::{Session, SessionConfig, SessionError};
use crdt_model::wire::{Message, Run, WireError};
use crdt_model::{DocId, DocKey, Identity, MemStore, Replica, Scope, Vector};

fn replica(seed: u8) -> Replica<MemStore> {
    Replica::open(Identity::from_secret_bytes([seed; 32]), MemStore::new(), 16).unwrap()
}

fn key(n: u8) -> DocKey {
    DocKey {
        scope: Scope::new("tickets").unwrap(),
        doc: DocId::from_bytes([n; 16]),
    }
}

/// A writer with `count` entries on its tickets feed, and the run carrying all of them.
fn writer_run(count: u8) -> (Replica<MemStore>, Run) {
    let mut writer = replica(1);
    for n in 0..count {
        writer
            .write(&key(n), 1, |tx| tx.put(ROOT, "seat", i64::from(n)))
            .unwrap();
    }
    let mut runs = writer.runs_for(&Vector::new(), |_| true, 1 << 20).unwrap();
    assert_eq!(runs.len(), 1);
    (writer, runs.remove(0))
}

fn assert_nothing_applied(receiver: &mut Replica<MemStore>) {
    assert!(receiver.heads().is_empty(), "no feed advanced");
    assert!(
        receiver.doc(&key(0)).unwrap().is_none(),
        "no document created"
    );
}

#[test]
fn a_valid_run_applies() {
    let (_, run) = writer_run(3);
    let mut receiver = replica(2);
    let received = receiver.receive(vec![run]).unwrap();
    assert_eq!(received.stored, 3);
    assert!(receiver.doc(&key(2)).unwrap().is_some());
}

#[test]
fn a_forged_signature_is_refused() {
    let (_, mut run) = writer_run(3);
    run.signature = Signature([7; 64]);
    let mut receiver = replica(2);
    let err = receiver.receive(vec![run]).unwrap_err();
    assert!(
        matches!(
            err,
            ReceiveError::Entry(EntryError::BadSignature { seq: 3, .. })
        ),
        "{err}"
    );
    assert_nothing_applied(&mut receiver);
}

#[test]
fn a_tampered_change_breaks_the_signature() {
    let (_, mut run) = writer_run(3);
    let last = run.items[1].change.len() - 1;
    run.items[1].change[last] ^= 1;
    let mut receiver = replica(2);
    assert!(matches!(
        receiver.receive(vec![run]),
        Err(ReceiveError::Entry(EntryError::BadSignature { .. }))
    ));
    assert_nothing_applied(&mut receiver);
}

#[test]
fn a_run_that_does_not_link_to_the_held_head_is_a_broken_chain() {
    let (_, run) = writer_run(3);
    let mut broken = run.clone();
    broken.prev = EntryHash([9; 32]);
    let mut receiver = replica(2);
    let err = receiver.receive(vec![broken]).unwrap_err();
    assert!(
        matches!(
            err,
            ReceiveError::BrokenChain {
                first_seq: 1,
                held_seq: 0,
                ..
            }
        ),
        "{err}"
    );
    assert_nothing_applied(&mut receiver);
}

#[test]
fn a_forked_feed_quarantines_its_origin() {
    // The same identity writes two different histories (a box restored from a backup).
    let (_, run) = writer_run(2);
    let mut twin = replica(1);
    twin.write(&key(0), 1, |tx| tx.put(ROOT, "seat", 99_i64))
        .unwrap();
    twin.write(&key(5), 1, |tx| tx.put(ROOT, "seat", 98_i64))
        .unwrap();
    twin.write(&key(6), 1, |tx| tx.put(ROOT, "seat", 97_i64))
        .unwrap();
    let forked = twin
        .runs_for(&Vector::new(), |_| true, 1 << 20)
        .unwrap()
        .remove(0);

    let mut receiver = replica(2);
    receiver.receive(vec![run.clone()]).unwrap();
    let err = receiver.receive(vec![forked]).unwrap_err();
    assert!(matches!(err, ReceiveError::Fork { seq: 2, .. }), "{err}");
    assert!(receiver.is_quarantined(&run.feed.origin));
    assert_eq!(
        receiver.heads().seq(&run.feed),
        2,
        "the first history is kept"
    );
}

#[test]
fn a_change_in_another_actors_name_is_refused() {
    let mut impostor = replica(1);
    let mut doc = automerge::Automerge::new();
    doc.set_actor(ActorId::from(&[42u8; 16][..]));
    doc.transact::<_, _, automerge::AutomergeError>(|tx| tx.put(ROOT, "x", 1_i64))
        .unwrap();
    let foreign = doc.get_last_local_change().unwrap().raw_bytes().to_vec();
    // Sign it validly as the impostor's own entry.
    impostor
        .write(&key(0), 1, |tx| tx.put(ROOT, "seat", 1_i64))
        .unwrap();
    let mut run = impostor
        .runs_for(&Vector::new(), |_| true, 1 << 20)
        .unwrap()
        .remove(0);
    run.items[0].change = foreign;
    let entry = crdt_model::Entry {
        origin: run.feed.origin,
        scope: run.feed.scope.clone(),
        seq: 1,
        prev: EntryHash::GENESIS,
        doc: run.items[0].doc,
        change: run.items[0].change.clone(),
    };
    run.signature = Identity::from_secret_bytes([1; 32]).sign(&entry.hash());

    let mut receiver = replica(2);
    let err = receiver.receive(vec![run]).unwrap_err();
    assert!(
        matches!(err, ReceiveError::Entry(EntryError::ActorMismatch { .. })),
        "{err}"
    );
    assert_nothing_applied(&mut receiver);
}

#[test]
fn one_bad_run_spoils_the_whole_message() {
    let (_, good) = writer_run(2);
    let mut other = replica(3);
    other
        .write(&key(9), 1, |tx| tx.put(ROOT, "x", 1_i64))
        .unwrap();
    let mut bad = other
        .runs_for(&Vector::new(), |_| true, 1 << 20)
        .unwrap()
        .remove(0);
    bad.signature = Signature([0; 64]);
    let mut receiver = replica(2);
    assert!(receiver.receive(vec![good, bad]).is_err());
    assert_nothing_applied(&mut receiver);
}

#[test]
fn duplicates_are_no_ops() {
    let (_, run) = writer_run(3);
    let mut receiver = replica(2);
    receiver.receive(vec![run.clone()]).unwrap();
    let again = receiver.receive(vec![run]).unwrap();
    assert_eq!((again.stored, again.duplicates), (0, 3));
}

/// A session that has exchanged hellos and vectors with the writer, ready for entries.
fn live_session(receiver: &mut Replica<MemStore>, writer: &Replica<MemStore>) -> Session {
    live_session_with(receiver, writer, SessionConfig::default())
}

fn live_session_with(
    receiver: &mut Replica<MemStore>,
    writer: &Replica<MemStore>,
    config: SessionConfig,
) -> Session {
    let mut session = Session::new(writer.node_id(), config);
    let _ = session.start(receiver);
    let hello = Message::Hello {
        node: writer.node_id(),
        digest: [1; 32],
        feeds: 1,
    };
    session.on_message(receiver, hello).unwrap();
    session
        .on_message(receiver, Message::Vector(writer.heads().vector(|_| true)))
        .unwrap();
    session
}

#[test]
fn malformed_frames_end_the_session_with_a_wire_error() {
    let (writer, run) = writer_run(2);
    let frame = Message::Entries(vec![run]).encode();
    type Expect = fn(&WireError) -> bool;
    let cases: Vec<(Vec<u8>, Expect)> = vec![
        (frame[..frame.len() - 10].to_vec(), |e| {
            matches!(e, WireError::Truncated { .. })
        }),
        (
            {
                let mut f = frame.clone();
                f[0] = 9;
                f
            },
            |e| matches!(e, WireError::UnknownVersion(9)),
        ),
        (vec![0; crdt_model::wire::MAX_MESSAGE_BYTES + 1], |e| {
            matches!(e, WireError::Oversized { .. })
        }),
        (vec![], |e| matches!(e, WireError::Empty)),
    ];
    for (bytes, expected) in cases {
        let mut receiver = replica(2);
        let mut session = live_session(&mut receiver, &writer);
        match session.on_frame(&mut receiver, &bytes) {
            Err(SessionError::Wire(err)) => assert!(expected(&err), "{err}"),
            other => panic!("expected a wire error, got {other:?}"),
        }
        assert_nothing_applied(&mut receiver);
    }
}

#[test]
fn a_peer_claiming_another_identity_is_refused() {
    let writer = replica(1);
    let mut receiver = replica(2);
    let mut session = Session::new(writer.node_id(), SessionConfig::default());
    let _ = session.start(&receiver);
    let liar = replica(3).node_id();
    let hello = Message::Hello {
        node: liar,
        digest: [0; 32],
        feeds: 0,
    };
    assert!(matches!(
        session.on_message(&mut receiver, hello),
        Err(SessionError::PeerMismatch { .. })
    ));
}

#[test]
fn messages_out_of_turn_are_refused() {
    let writer = replica(1);
    let mut receiver = replica(2);
    let mut session = Session::new(writer.node_id(), SessionConfig::default());
    let _ = session.start(&receiver);
    assert!(matches!(
        session.on_message(&mut receiver, Message::Ack(Vector::new())),
        Err(SessionError::Unexpected { kind: "ack", .. })
    ));
}

/// A gate that admits one origin's writes to one scope and relays everyone else.
#[derive(Debug)]
struct OnlyWriter {
    origin: crdt_model::NodeId,
    scope: Scope,
}

impl crdt_model::session::FeedGate for OnlyWriter {
    fn relays(&self, _origin: &crdt_model::NodeId) -> bool {
        true
    }

    fn admits(&self, origin: &crdt_model::NodeId, scope: &Scope) -> Result<(), String> {
        if *origin == self.origin && *scope == self.scope {
            Ok(())
        } else {
            Err("not a writer of this scope".into())
        }
    }
}

fn gated_session(
    receiver: &mut Replica<MemStore>,
    writer: &Replica<MemStore>,
    gate: OnlyWriter,
) -> Session {
    let config = SessionConfig {
        gate: Some(std::sync::Arc::new(gate)),
        ..SessionConfig::default()
    };
    live_session_with(receiver, writer, config)
}

#[test]
fn entries_of_an_origin_without_write_permission_are_refused() {
    let (writer, run) = writer_run(2);
    let mut receiver = replica(2);
    let gate = OnlyWriter {
        origin: writer.node_id(),
        scope: Scope::new("health").unwrap(),
    };
    let mut session = gated_session(&mut receiver, &writer, gate);
    match session.on_message(&mut receiver, Message::Entries(vec![run])) {
        Err(SessionError::NotPermitted { origin, scope, .. }) => {
            assert_eq!(origin, writer.node_id());
            assert_eq!(scope.as_str(), "tickets");
        }
        other => panic!("expected NotPermitted, got {other:?}"),
    }
    assert_nothing_applied(&mut receiver);
}

#[test]
fn entries_of_a_permitted_writer_apply_through_the_gate() {
    let (writer, run) = writer_run(2);
    let mut receiver = replica(2);
    let gate = OnlyWriter {
        origin: writer.node_id(),
        scope: Scope::new("tickets").unwrap(),
    };
    let mut session = gated_session(&mut receiver, &writer, gate);
    session
        .on_message(&mut receiver, Message::Entries(vec![run]))
        .unwrap();
    assert!(receiver.doc(&key(1)).unwrap().is_some());
}
