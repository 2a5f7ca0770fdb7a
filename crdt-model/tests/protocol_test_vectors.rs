//! The test vectors of `docs/protocol.md` §10.3, pinned: another implementation checks its
//! hashing, signing and encoding against the same values.

use crdt_model::entry::{EntryHash, actor_for};
use crdt_model::vector::{Head, Heads};
use crdt_model::wire::{Message, Run, RunItem};
use crdt_model::{DocId, Entry, FeedId, Identity, Scope, Vector};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn the_documented_test_vectors_hold() {
    let identity = Identity::from_secret_bytes([1; 32]);
    let origin = identity.node_id();
    assert_eq!(
        origin.to_string(),
        "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"
    );

    let scope = Scope::new("tickets").unwrap();
    let entry = Entry {
        origin,
        scope: scope.clone(),
        seq: 1,
        prev: EntryHash::GENESIS,
        doc: DocId::from_bytes([7; 16]),
        change: vec![1, 2, 3],
    };
    let hash = entry.hash();
    assert_eq!(
        hex(&hash.0),
        "10535b592cef5fc4824d6ac10c7ed8603dc1ccf6d9b7f2d4f3575beb19dcabf3"
    );
    let signature = identity.sign(&hash);
    assert_eq!(
        hex(&signature.0),
        "c3650fb55677eb15813d483390219b89f709f7128957a940c47b3e789c7e5121\
         91956ac401ba13aa24e1ea93e3f405c3e6335350ba3fb0986c73f4f8aadd4a09"
    );
    assert_eq!(
        hex(actor_for(&origin).to_bytes()),
        "939618f1638ec250dfc9293cfc6f9041"
    );

    let feed = FeedId { origin, scope };
    let mut heads = Heads::default();
    assert_eq!(
        hex(&heads.digest(|_| true)),
        "02b5b6b63324ee333d86c1ba854ebce2d8c6fb0313f11b4b5df9a66b7248795c"
    );
    heads.insert(feed.clone(), Head { seq: 1, hash });
    let digest = heads.digest(|_| true);
    assert_eq!(
        hex(&digest),
        "e0e0a14d4caebe3e0030e4fa0bd6210ae052c93619ee665a7bd5bf5646ca610e"
    );

    let hello = Message::Hello {
        node: origin,
        digest,
        feeds: 1,
    }
    .encode();
    assert_eq!(hello.len(), 67);
    assert_eq!(hex(&hello[..2]), "0101");

    let run = Run {
        feed: feed.clone(),
        first_seq: 1,
        prev: EntryHash::GENESIS,
        items: vec![RunItem {
            doc: entry.doc,
            change: entry.change.clone(),
        }],
        signature,
    };
    assert_eq!(Message::Entries(vec![run]).encode().len(), 161);
    let ack: Vector = [(feed, 1)].into_iter().collect();
    assert_eq!(Message::Ack(ack).encode().len(), 47);
}
