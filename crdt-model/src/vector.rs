//! Version vectors: for each feed (origin, scope), the highest contiguous sequence number held.

use std::collections::BTreeMap;

use crate::entry::EntryHash;
use crate::ids::FeedId;

/// What a node holds of each feed, or what it believes a peer holds. Absent feeds are at 0.
#[derive(Clone, Default, PartialEq, Eq, Debug)]
pub struct Vector(BTreeMap<FeedId, u64>);

impl Vector {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn get(&self, feed: &FeedId) -> u64 {
        self.0.get(feed).copied().unwrap_or(0)
    }

    /// Sets a feed's sequence number; 0 removes it, since absent means 0.
    pub fn set(&mut self, feed: FeedId, seq: u64) {
        if seq == 0 {
            self.0.remove(&feed);
        } else {
            self.0.insert(feed, seq);
        }
    }

    /// Raises a feed to `seq` if it is behind.
    pub fn raise(&mut self, feed: &FeedId, seq: u64) {
        if seq > self.get(feed) {
            self.0.insert(feed.clone(), seq);
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&FeedId, u64)> {
        self.0.iter().map(|(feed, seq)| (feed, *seq))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many entries `self` holds that `other` lacks, over all feeds.
    pub fn entries_ahead_of(&self, other: &Vector) -> u64 {
        self.iter()
            .map(|(feed, seq)| seq.saturating_sub(other.get(feed)))
            .sum()
    }
}

impl FromIterator<(FeedId, u64)> for Vector {
    fn from_iter<T: IntoIterator<Item = (FeedId, u64)>>(iter: T) -> Self {
        let mut vector = Vector::new();
        for (feed, seq) in iter {
            vector.set(feed, seq);
        }
        vector
    }
}

/// The newest entry of a feed that a node holds.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Head {
    pub seq: u64,
    pub hash: EntryHash,
}

/// A node's own heads, and the digest that lets two nodes in sync prove it in one exchange.
#[derive(Clone, Default, Debug)]
pub struct Heads(BTreeMap<FeedId, Head>);

const DIGEST_CONTEXT: &str = "culao 2026-12 vector digest v1";

impl Heads {
    pub fn get(&self, feed: &FeedId) -> Option<Head> {
        self.0.get(feed).copied()
    }

    pub fn seq(&self, feed: &FeedId) -> u64 {
        self.0.get(feed).map_or(0, |head| head.seq)
    }

    pub fn insert(&mut self, feed: FeedId, head: Head) {
        self.0.insert(feed, head);
    }

    pub fn iter(&self) -> impl Iterator<Item = (&FeedId, &Head)> {
        self.0.iter()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The feeds where these heads are ahead of `peer`, with what the peer holds of each, in
    /// feed order. One pass over both maps (they share the order) rather than a lookup per
    /// feed: a session asks this after every change, of every feed the node holds.
    pub fn ahead_of<'a>(
        &'a self,
        peer: &'a Vector,
    ) -> impl Iterator<Item = (&'a FeedId, &'a Head, u64)> + 'a {
        let mut theirs = peer.0.iter().peekable();
        self.0.iter().filter_map(move |(feed, head)| {
            while theirs.next_if(|(f, _)| *f < feed).is_some() {}
            let held = theirs
                .next_if(|(f, _)| *f == feed)
                .map_or(0, |(_, seq)| *seq);
            (head.seq > held).then_some((feed, head, held))
        })
    }

    /// The sequence numbers of the feeds that pass `include`.
    pub fn vector(&self, include: impl Fn(&FeedId) -> bool) -> Vector {
        self.0
            .iter()
            .filter(|(feed, _)| include(feed))
            .map(|(f, h)| (f.clone(), h.seq))
            .collect()
    }

    /// A hash over every included feed's head (sequence number and entry hash), in feed order.
    ///
    /// Equal digests mean equal holdings, so a pair in sync need not exchange vectors at all;
    /// including the head hash makes a forked feed show up as a difference.
    pub fn digest(&self, include: impl Fn(&FeedId) -> bool) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new_derive_key(DIGEST_CONTEXT);
        for (feed, head) in self.0.iter().filter(|(feed, _)| include(feed)) {
            hasher.update(feed.origin.as_bytes());
            hasher.update(&[feed.scope.as_str().len() as u8]);
            hasher.update(feed.scope.as_str().as_bytes());
            hasher.update(&head.seq.to_be_bytes());
            hasher.update(&head.hash.0);
        }
        *hasher.finalize().as_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{NodeId, Scope};

    fn feed(origin: u8, scope: &str) -> FeedId {
        FeedId {
            origin: NodeId::from_bytes([origin; 32]),
            scope: Scope::new(scope).unwrap(),
        }
    }

    #[test]
    fn entries_ahead_counts_only_what_the_other_lacks() {
        let mut mine = Vector::new();
        mine.set(feed(1, "a"), 10);
        mine.set(feed(2, "a"), 3);
        let mut theirs = Vector::new();
        theirs.set(feed(1, "a"), 4);
        theirs.set(feed(2, "a"), 9);
        assert_eq!(mine.entries_ahead_of(&theirs), 6);
        assert_eq!(theirs.entries_ahead_of(&mine), 6);
    }

    fn head(seq: u64) -> Head {
        Head {
            seq,
            hash: EntryHash([seq as u8; 32]),
        }
    }

    #[test]
    fn ahead_of_lists_exactly_the_feeds_the_peer_lacks() {
        let mut heads = Heads::default();
        for (origin, scope, seq) in [(1, "a", 5), (1, "b", 2), (2, "a", 7), (3, "c", 1)] {
            heads.insert(feed(origin, scope), head(seq));
        }
        let mut peer = Vector::new();
        peer.set(feed(0, "z"), 9); // a feed the node lacks entirely
        peer.set(feed(1, "a"), 5); // level
        peer.set(feed(2, "a"), 3); // behind
        peer.set(feed(2, "b"), 4); // only the peer has it
        peer.set(feed(3, "c"), 8); // ahead of the node

        let ahead: Vec<(FeedId, u64, u64)> = heads
            .ahead_of(&peer)
            .map(|(f, h, held)| (f.clone(), h.seq, held))
            .collect();
        assert_eq!(ahead, vec![(feed(1, "b"), 2, 0), (feed(2, "a"), 7, 3)]);
        let by_lookup: Vec<FeedId> = heads
            .iter()
            .filter(|(f, h)| h.seq > peer.get(f))
            .map(|(f, _)| f.clone())
            .collect();
        assert_eq!(
            ahead.into_iter().map(|a| a.0).collect::<Vec<_>>(),
            by_lookup
        );
    }

    #[test]
    fn digest_changes_with_any_head_and_respects_the_filter() {
        let mut heads = Heads::default();
        heads.insert(
            feed(1, "a"),
            Head {
                seq: 1,
                hash: EntryHash([1; 32]),
            },
        );
        heads.insert(
            feed(1, "health"),
            Head {
                seq: 5,
                hash: EntryHash([5; 32]),
            },
        );
        let all = heads.digest(|_| true);
        let no_health = heads.digest(|f| f.scope.as_str() != "health");

        let mut other = heads.clone();
        other.insert(
            feed(1, "health"),
            Head {
                seq: 6,
                hash: EntryHash([6; 32]),
            },
        );
        assert_ne!(other.digest(|_| true), all);
        assert_eq!(other.digest(|f| f.scope.as_str() != "health"), no_health);
    }
}
