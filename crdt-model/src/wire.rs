//! The sync protocol's wire format, version 1: message types, encoding and bounded decoding.
//!
//! `docs/protocol.md` describes every byte. Decoding never trusts a length or count it reads:
//! each is checked against what is left of the message before anything is allocated, so no
//! input can make it panic or allocate more than the message's own size.

use std::collections::BTreeMap;

use crate::entry::{EntryHash, Signature};
use crate::ids::{DocId, FeedId, NodeId, Scope};
use crate::vector::Vector;

/// The protocol version this build speaks; the first byte of every message.
pub const PROTOCOL_VERSION: u8 = 1;
/// Largest message a peer may send. Transports refuse a longer frame before reading it.
pub const MAX_MESSAGE_BYTES: usize = 4 << 20;
/// Largest automerge change one entry may carry.
pub const MAX_CHANGE_BYTES: usize = 1 << 20;
/// Longest reason text a `Refuse` carries.
pub const MAX_REASON_BYTES: usize = 256;

const TYPE_HELLO: u8 = 1;
const TYPE_VECTOR: u8 = 2;
const TYPE_ENTRIES: u8 = 3;
const TYPE_ACK: u8 = 4;
const TYPE_HAVE: u8 = 5;
const TYPE_REFUSE: u8 = 6;

/// One protocol message.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Message {
    /// Opens a session: who I am, and a digest of what I hold of the feeds we share.
    Hello {
        node: NodeId,
        digest: [u8; 32],
        feeds: u64,
    },
    /// Everything I hold of the feeds we share (sent when the digests differ).
    Vector(Vector),
    /// Entries the peer lacks, as runs of consecutive entries of one feed.
    Entries(Vec<Run>),
    /// Reply to `Entries`: my heads, now, of every feed that message touched.
    Ack(Vector),
    /// Unprompted: my heads advanced (from a local write or another peer).
    Have(Vector),
    /// I am ending this session, and why.
    Refuse { reason: String },
}

/// Consecutive entries `first_seq..` of one feed. `signature` is the origin's signature over
/// the hash of the last entry, which through the hash chain covers the whole run.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Run {
    pub feed: FeedId,
    pub first_seq: u64,
    pub prev: EntryHash,
    pub items: Vec<RunItem>,
    pub signature: Signature,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RunItem {
    pub doc: DocId,
    pub change: Vec<u8>,
}

impl Run {
    pub fn last_seq(&self) -> u64 {
        self.first_seq + self.items.len() as u64 - 1
    }
}

/// Why a message could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    #[error("empty message")]
    Empty,
    #[error("protocol version {0} is not spoken here (this build speaks {PROTOCOL_VERSION})")]
    UnknownVersion(u8),
    #[error("unknown message type {0}")]
    UnknownType(u8),
    #[error("message truncated while reading {what}")]
    Truncated { what: &'static str },
    #[error("{what} of {len} bytes exceeds the limit of {max}")]
    Oversized {
        what: &'static str,
        len: u64,
        max: u64,
    },
    #[error("{what} is not a valid varint")]
    BadVarint { what: &'static str },
    #[error("{what} is invalid: {reason}")]
    Invalid { what: &'static str, reason: String },
    #[error("{0} bytes left over after the message")]
    TrailingBytes(usize),
}

impl Message {
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Hello { .. } => "hello",
            Message::Vector(_) => "vector",
            Message::Entries(_) => "entries",
            Message::Ack(_) => "ack",
            Message::Have(_) => "have",
            Message::Refuse { .. } => "refuse",
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer(Vec::with_capacity(64));
        w.u8(PROTOCOL_VERSION);
        match self {
            Message::Hello {
                node,
                digest,
                feeds,
            } => {
                w.u8(TYPE_HELLO);
                w.bytes(node.as_bytes());
                w.bytes(digest);
                w.varint(*feeds);
            }
            Message::Vector(v) => {
                w.u8(TYPE_VECTOR);
                w.vector(v);
            }
            Message::Entries(runs) => {
                w.u8(TYPE_ENTRIES);
                w.varint(runs.len() as u64);
                for run in runs {
                    w.run(run);
                }
            }
            Message::Ack(v) => {
                w.u8(TYPE_ACK);
                w.vector(v);
            }
            Message::Have(v) => {
                w.u8(TYPE_HAVE);
                w.vector(v);
            }
            Message::Refuse { reason } => {
                w.u8(TYPE_REFUSE);
                let mut end = reason.len().min(MAX_REASON_BYTES);
                while !reason.is_char_boundary(end) {
                    end -= 1;
                }
                w.str(&reason[..end]);
            }
        }
        w.0
    }

    pub fn decode(bytes: &[u8]) -> Result<Message, WireError> {
        if bytes.len() > MAX_MESSAGE_BYTES {
            return Err(WireError::Oversized {
                what: "message",
                len: bytes.len() as u64,
                max: MAX_MESSAGE_BYTES as u64,
            });
        }
        let mut r = Reader { buf: bytes, pos: 0 };
        let version = r.u8("version").map_err(|_| WireError::Empty)?;
        if version != PROTOCOL_VERSION {
            return Err(WireError::UnknownVersion(version));
        }
        let message = match r.u8("message type")? {
            TYPE_HELLO => Message::Hello {
                node: NodeId::from_bytes(r.array("node id")?),
                digest: r.array("digest")?,
                feeds: r.varint("feed count")?,
            },
            TYPE_VECTOR => Message::Vector(r.vector()?),
            TYPE_ENTRIES => {
                // A run takes at least 32 + 2 + 1 + 32 + 1 + 64 bytes, an item 17.
                let count = r.count("run count", 132)?;
                let mut runs = Vec::with_capacity(count);
                for _ in 0..count {
                    runs.push(r.run()?);
                }
                Message::Entries(runs)
            }
            TYPE_ACK => Message::Ack(r.vector()?),
            TYPE_HAVE => Message::Have(r.vector()?),
            TYPE_REFUSE => Message::Refuse {
                reason: r.str("reason", MAX_REASON_BYTES)?,
            },
            other => return Err(WireError::UnknownType(other)),
        };
        match r.remaining() {
            0 => Ok(message),
            n => Err(WireError::TrailingBytes(n)),
        }
    }
}

/// The encoded size of a run item, for budgeting without encoding.
pub fn item_wire_len(change_len: usize) -> usize {
    16 + varint_len(change_len as u64) + change_len
}

/// The encoded size of a run's fixed part (everything but its items).
pub fn run_overhead(feed: &FeedId, first_seq: u64, items: usize) -> usize {
    32 + 1 + feed.scope.as_str().len() + varint_len(first_seq) + 32 + varint_len(items as u64) + 64
}

fn varint_len(mut value: u64) -> usize {
    let mut len = 1;
    while value >= 0x80 {
        value >>= 7;
        len += 1;
    }
    len
}

struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, value: u8) {
        self.0.push(value);
    }

    fn bytes(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }

    fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.0.push((value as u8) | 0x80);
            value >>= 7;
        }
        self.0.push(value as u8);
    }

    fn str(&mut self, s: &str) {
        self.varint(s.len() as u64);
        self.bytes(s.as_bytes());
    }

    fn scope(&mut self, scope: &Scope) {
        self.u8(scope.as_str().len() as u8);
        self.bytes(scope.as_str().as_bytes());
    }

    /// Scopes once in a table, then each origin once with (scope index, seq) pairs.
    fn vector(&mut self, vector: &Vector) {
        let mut scopes: BTreeMap<&Scope, u64> = BTreeMap::new();
        let mut by_origin: BTreeMap<&NodeId, Vec<(&Scope, u64)>> = BTreeMap::new();
        for (feed, seq) in vector.iter() {
            scopes.insert(&feed.scope, 0);
            by_origin
                .entry(&feed.origin)
                .or_default()
                .push((&feed.scope, seq));
        }
        for (index, slot) in scopes.values_mut().enumerate() {
            *slot = index as u64;
        }

        self.varint(scopes.len() as u64);
        for scope in scopes.keys() {
            self.scope(scope);
        }
        self.varint(by_origin.len() as u64);
        for (origin, feeds) in by_origin {
            self.bytes(origin.as_bytes());
            self.varint(feeds.len() as u64);
            for (scope, seq) in feeds {
                self.varint(scopes[scope]);
                self.varint(seq);
            }
        }
    }

    fn run(&mut self, run: &Run) {
        self.bytes(run.feed.origin.as_bytes());
        self.scope(&run.feed.scope);
        self.varint(run.first_seq);
        self.bytes(&run.prev.0);
        self.varint(run.items.len() as u64);
        for item in &run.items {
            self.bytes(item.doc.as_bytes());
            self.varint(item.change.len() as u64);
            self.bytes(&item.change);
        }
        self.bytes(&run.signature.0);
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, len: usize, what: &'static str) -> Result<&[u8], WireError> {
        if len > self.remaining() {
            return Err(WireError::Truncated { what });
        }
        let slice = &self.buf[self.pos..self.pos + len];
        self.pos += len;
        Ok(slice)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, WireError> {
        Ok(self.take(1, what)?[0])
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], WireError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    fn varint(&mut self, what: &'static str) -> Result<u64, WireError> {
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = self.u8(what)?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(WireError::BadVarint { what });
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(WireError::BadVarint { what })
    }

    /// A count of items each at least `min_item_bytes` long: more than the rest of the
    /// message could hold is refused before any allocation.
    fn count(&mut self, what: &'static str, min_item_bytes: usize) -> Result<usize, WireError> {
        let count = self.varint(what)?;
        let max = (self.remaining() / min_item_bytes) as u64;
        if count > max {
            return Err(WireError::Oversized {
                what,
                len: count,
                max,
            });
        }
        Ok(count as usize)
    }

    fn str(&mut self, what: &'static str, max: usize) -> Result<String, WireError> {
        let len = self.varint(what)?;
        if len > max as u64 {
            return Err(WireError::Oversized {
                what,
                len,
                max: max as u64,
            });
        }
        let bytes = self.take(len as usize, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| WireError::Invalid {
            what,
            reason: "not UTF-8".into(),
        })
    }

    fn scope(&mut self) -> Result<Scope, WireError> {
        let len = self.u8("scope length")? as usize;
        let bytes = self.take(len, "scope")?;
        let name = std::str::from_utf8(bytes).map_err(|_| WireError::Invalid {
            what: "scope",
            reason: "not UTF-8".into(),
        })?;
        Scope::new(name).map_err(|err| WireError::Invalid {
            what: "scope",
            reason: err.to_string(),
        })
    }

    fn vector(&mut self) -> Result<Vector, WireError> {
        let scope_count = self.count("scope count", 2)?;
        let mut scopes = Vec::with_capacity(scope_count);
        for _ in 0..scope_count {
            scopes.push(self.scope()?);
        }
        let origin_count = self.count("origin count", 33)?;
        let mut vector = Vector::new();
        for _ in 0..origin_count {
            let origin = NodeId::from_bytes(self.array("origin")?);
            let feed_count = self.count("feed count", 2)?;
            for _ in 0..feed_count {
                let index = self.varint("scope index")?;
                let scope = scopes
                    .get(index as usize)
                    .ok_or_else(|| WireError::Invalid {
                        what: "scope index",
                        reason: format!("{index} is past the table of {}", scopes.len()),
                    })?;
                let seq = self.varint("sequence number")?;
                vector.set(
                    FeedId {
                        origin,
                        scope: scope.clone(),
                    },
                    seq,
                );
            }
        }
        Ok(vector)
    }

    fn run(&mut self) -> Result<Run, WireError> {
        let origin = NodeId::from_bytes(self.array("run origin")?);
        let scope = self.scope()?;
        let first_seq = self.varint("first sequence number")?;
        if first_seq == 0 {
            return Err(WireError::Invalid {
                what: "first sequence number",
                reason: "0".into(),
            });
        }
        let prev = EntryHash(self.array("previous hash")?);
        let count = self.count("entry count", 17)?;
        if count == 0 {
            return Err(WireError::Invalid {
                what: "entry count",
                reason: "empty run".into(),
            });
        }
        first_seq
            .checked_add(count as u64)
            .ok_or_else(|| WireError::Invalid {
                what: "first sequence number",
                reason: "run overflows the sequence space".into(),
            })?;
        let mut items = Vec::with_capacity(count);
        for _ in 0..count {
            let doc = DocId::from_bytes(self.array("document id")?);
            let len = self.varint("change length")?;
            if len > MAX_CHANGE_BYTES as u64 {
                return Err(WireError::Oversized {
                    what: "change",
                    len,
                    max: MAX_CHANGE_BYTES as u64,
                });
            }
            let change = self.take(len as usize, "change")?.to_vec();
            items.push(RunItem { doc, change });
        }
        let signature = Signature(self.array("signature")?);
        Ok(Run {
            feed: FeedId { origin, scope },
            first_seq,
            prev,
            items,
            signature,
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn feed(origin: u8, scope: &str) -> FeedId {
        FeedId {
            origin: NodeId::from_bytes([origin; 32]),
            scope: Scope::new(scope).unwrap(),
        }
    }

    fn sample_run() -> Run {
        Run {
            feed: feed(3, "tickets"),
            first_seq: 5,
            prev: EntryHash([9; 32]),
            items: vec![
                RunItem {
                    doc: DocId::from_bytes([1; 16]),
                    change: vec![0xaa; 40],
                },
                RunItem {
                    doc: DocId::from_bytes([2; 16]),
                    change: vec![0xbb; 300],
                },
            ],
            signature: Signature([4; 64]),
        }
    }

    fn samples() -> Vec<Message> {
        let vector: Vector = [
            (feed(1, "tickets"), 7),
            (feed(1, "health"), 300),
            (feed(2, "tickets"), 1),
        ]
        .into_iter()
        .collect();
        vec![
            Message::Hello {
                node: NodeId::from_bytes([5; 32]),
                digest: [6; 32],
                feeds: 12,
            },
            Message::Vector(vector.clone()),
            Message::Entries(vec![sample_run(), sample_run()]),
            Message::Ack(vector.clone()),
            Message::Have(Vector::new()),
            Message::Refuse {
                reason: "revoked".into(),
            },
        ]
    }

    #[test]
    fn every_message_round_trips() {
        for message in samples() {
            assert_eq!(
                Message::decode(&message.encode()),
                Ok(message.clone()),
                "{message:?}"
            );
        }
    }

    #[test]
    fn the_size_helpers_match_the_encoding() {
        let run = sample_run();
        let items: usize = run
            .items
            .iter()
            .map(|i| item_wire_len(i.change.len()))
            .sum();
        let expected = 2 + 1 + run_overhead(&run.feed, run.first_seq, run.items.len()) + items;
        assert_eq!(Message::Entries(vec![run]).encode().len(), expected);
    }

    #[test]
    fn a_hello_is_small() {
        let hello = Message::Hello {
            node: NodeId::from_bytes([5; 32]),
            digest: [6; 32],
            feeds: 500,
        };
        assert!(hello.encode().len() < 80);
    }

    #[test]
    fn every_truncation_is_refused() {
        for message in samples() {
            let bytes = message.encode();
            for cut in 0..bytes.len() {
                assert!(
                    Message::decode(&bytes[..cut]).is_err(),
                    "{} cut at {cut}",
                    message.kind()
                );
            }
        }
    }

    #[test]
    fn unknown_versions_and_types_are_named() {
        let mut bytes = samples()[0].encode();
        bytes[0] = 2;
        assert_eq!(Message::decode(&bytes), Err(WireError::UnknownVersion(2)));
        bytes[0] = PROTOCOL_VERSION;
        bytes[1] = 99;
        assert_eq!(Message::decode(&bytes), Err(WireError::UnknownType(99)));
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut bytes = samples()[1].encode();
        bytes.push(0);
        assert_eq!(Message::decode(&bytes), Err(WireError::TrailingBytes(1)));
    }

    #[test]
    fn a_huge_count_is_refused_without_allocating() {
        let mut w = Writer(vec![PROTOCOL_VERSION, TYPE_ENTRIES]);
        w.varint(u64::MAX / 2);
        assert!(matches!(
            Message::decode(&w.0),
            Err(WireError::Oversized { .. })
        ));

        let mut w = Writer(vec![PROTOCOL_VERSION, TYPE_VECTOR]);
        w.varint(1 << 40);
        assert!(matches!(
            Message::decode(&w.0),
            Err(WireError::Oversized { .. })
        ));
    }

    #[test]
    fn an_oversized_change_is_refused() {
        let mut run = sample_run();
        run.items.truncate(1);
        run.items[0].change = vec![0; MAX_CHANGE_BYTES + 1];
        let bytes = Message::Entries(vec![run]).encode();
        assert!(matches!(
            Message::decode(&bytes),
            Err(WireError::Oversized { what: "change", .. })
        ));
    }

    #[test]
    fn an_oversized_message_is_refused() {
        let bytes = vec![0u8; MAX_MESSAGE_BYTES + 1];
        assert!(matches!(
            Message::decode(&bytes),
            Err(WireError::Oversized { .. })
        ));
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = Message::decode(&bytes);
        }

        #[test]
        fn decoding_mutated_messages_never_panics(index in 0usize..6, flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
            let mut bytes = samples()[index].encode();
            for (at, value) in flips {
                let at = at % bytes.len();
                bytes[at] = value;
            }
            let _ = Message::decode(&bytes);
        }
    }
}
