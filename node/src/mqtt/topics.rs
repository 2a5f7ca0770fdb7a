//! The sync topic tree: `{prefix}/{network}/sync/{to}/{from}`.
//!
//! `network` is the network id (32 hex digits), or `open` for open (development) boxes;
//! `to` and `from` are node ids (64 hex digits). A box subscribes to
//! `{prefix}/{network}/sync/{its id}/+` and publishes to a peer on
//! `{prefix}/{network}/sync/{peer}/{its id}`, so one topic carries one direction of one
//! pair, and the broker keeps its messages in order.

use std::str::FromStr as _;

use crdt_model::NodeId;

/// Where one box's sync traffic lives on a broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topics {
    base: String,
    me: NodeId,
}

impl Topics {
    pub fn new(prefix: &str, network: &str, me: NodeId) -> Self {
        Self {
            base: format!("{prefix}/{network}/sync"),
            me,
        }
    }

    /// The filter this box subscribes to.
    pub fn inbox(&self) -> String {
        format!("{}/{}/+", self.base, self.me)
    }

    /// The topic this box publishes to `peer` on.
    pub fn to(&self, peer: &NodeId) -> String {
        format!("{}/{peer}/{}", self.base, self.me)
    }

    /// The sender of a message received on `topic`, if it is one of this box's inbox topics.
    pub fn sender(&self, topic: &str) -> Option<NodeId> {
        let rest = topic.strip_prefix(&self.base)?.strip_prefix('/')?;
        let (to, from) = rest.split_once('/')?;
        if NodeId::from_str(to).ok()? != self.me {
            return None;
        }
        let from = NodeId::from_str(from).ok()?;
        (from != self.me).then_some(from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_box_reads_the_sender_of_what_it_subscribed_to() {
        let me = NodeId::from_bytes([1; 32]);
        let peer = NodeId::from_bytes([2; 32]);
        let mine = Topics::new("culao", "open", me);
        let theirs = Topics::new("culao", "open", peer);
        assert_eq!(mine.sender(&theirs.to(&me)), Some(peer));
        assert_eq!(mine.sender(&mine.to(&peer)), None, "not addressed to me");
        assert_eq!(mine.sender("culao/open/sync/x/y"), None);
        let other_network = Topics::new("culao", "other", peer).to(&me);
        assert_eq!(mine.sender(&other_network), None);
        assert!(mine.inbox().ends_with("/+"));
    }
}
