//! `peers.toml`: where a box listens and whom it dials (the hub and its neighbours).
//!
//! ```toml
//! listen = ["192.168.10.2:7100"]
//!
//! [[peer]]
//! node = "<64 hex>"
//! role = "hub"
//! site = "mainland-hub"
//! addrs = ["10.8.0.1:7100"]
//! ```
//!
//! The island has no DNS, so addresses are IP and port. A peer's role and site are what the
//! authority issued to it, written here for the operator; a session still trusts only the
//! certificate the peer presents. An empty `listen` means the box only dials out.

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use crdt_model::NodeId;
use serde::Deserialize;

use crate::names::Site;
use crate::policy::Role;

/// A peer as the operator names it on the command line: `NODE_ID@IP:PORT`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PeerSpec {
    pub node: NodeId,
    pub addr: SocketAddr,
}

/// A `--peer` value that is not `NODE_ID@IP:PORT`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("peer {value:?} is not NODE_ID@IP:PORT ({reason})")]
pub struct PeerSpecError {
    pub value: String,
    pub reason: String,
}

impl FromStr for PeerSpec {
    type Err = PeerSpecError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |reason: String| PeerSpecError {
            value: s.to_owned(),
            reason,
        };
        let (node, addr) = s.split_once('@').ok_or_else(|| err("no '@'".to_owned()))?;
        Ok(Self {
            node: node
                .parse()
                .map_err(|e: crdt_model::ids::IdError| err(e.to_string()))?,
            addr: addr
                .parse()
                .map_err(|e: std::net::AddrParseError| err(e.to_string()))?,
        })
    }
}

impl fmt::Display for PeerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.node, self.addr)
    }
}

/// `peers.toml` that cannot be read: the TOML error, or which entry is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct MalformedPeers {
    pub reason: String,
}

/// One peer a box dials.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Peer {
    pub node: NodeId,
    pub role: Role,
    pub site: Site,
    pub addrs: Vec<SocketAddr>,
}

/// The contents of `peers.toml`.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Peers {
    /// Where this box accepts connections.
    pub listen: Vec<SocketAddr>,
    pub peers: Vec<Peer>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PeersToml {
    #[serde(default)]
    listen: Vec<SocketAddr>,
    #[serde(default, rename = "peer")]
    peers: Vec<PeerToml>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PeerToml {
    node: String,
    role: String,
    site: String,
    addrs: Vec<SocketAddr>,
}

impl Peers {
    /// The text of `peers.toml`. Written by hand: every value is hex, a slug or an address,
    /// none needing escapes, and the layout stays the one documented above.
    pub fn to_toml(&self) -> String {
        let quoted = |addrs: &[SocketAddr]| -> String {
            let items: Vec<String> = addrs.iter().map(|addr| format!("\"{addr}\"")).collect();
            format!("[{}]", items.join(", "))
        };
        let mut out = String::from(
            "# Where this box listens and which peers it dials. See docs/provisioning.md.\n",
        );
        out.push_str(&format!("listen = {}\n", quoted(&self.listen)));
        for peer in &self.peers {
            out.push_str(&format!(
                "\n[[peer]]\nnode = \"{}\"\nrole = \"{}\"\nsite = \"{}\"\naddrs = {}\n",
                peer.node,
                peer.role,
                peer.site,
                quoted(&peer.addrs)
            ));
        }
        out
    }

    /// Parses `peers.toml`; the error says which entry is wrong.
    pub fn from_toml(text: &str) -> Result<Self, MalformedPeers> {
        let file: PeersToml = toml::from_str(text).map_err(|err| MalformedPeers {
            reason: err.message().to_owned(),
        })?;
        let mut peers = Vec::with_capacity(file.peers.len());
        for (i, peer) in file.peers.into_iter().enumerate() {
            let entry = |err: String| MalformedPeers {
                reason: format!("peer {}: {err}", i + 1),
            };
            peers.push(Peer {
                node: peer
                    .node
                    .parse()
                    .map_err(|e: crdt_model::ids::IdError| entry(e.to_string()))?,
                role: peer
                    .role
                    .parse()
                    .map_err(|e: crate::policy::UnknownRole| entry(e.to_string()))?,
                site: Site::new(&peer.site).map_err(|e| entry(e.to_string()))?,
                addrs: peer.addrs,
            });
        }
        Ok(Self {
            listen: file.listen,
            peers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(seed: u8) -> NodeId {
        crdt_model::Identity::from_secret_bytes([seed; 32]).node_id()
    }

    #[test]
    fn a_peer_spec_is_node_at_address() {
        let text = format!("{}@10.8.0.1:7100", node(1));
        let spec: PeerSpec = text.parse().unwrap();
        assert_eq!(spec.node, node(1));
        assert_eq!(spec.addr, "10.8.0.1:7100".parse().unwrap());
        assert_eq!(spec.to_string(), text);
        for bad in [
            "",
            "10.8.0.1:7100",
            &format!("{}@hub:7100", node(1)),
            "abc@10.8.0.1:7100",
        ] {
            assert!(bad.parse::<PeerSpec>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn peers_round_trip_through_toml() {
        let peers = Peers {
            listen: vec!["0.0.0.0:7100".parse().unwrap()],
            peers: vec![Peer {
                node: node(2),
                role: Role::Hub,
                site: Site::new("mainland-hub").unwrap(),
                addrs: vec![
                    "10.8.0.1:7100".parse().unwrap(),
                    "[fd00::1]:7100".parse().unwrap(),
                ],
            }],
        };
        let text = peers.to_toml();
        assert!(text.contains("[[peer]]"), "{text}");
        assert_eq!(Peers::from_toml(&text), Ok(peers));

        let bad_role = text.replace("\"hub\"", "\"hob\"");
        let err = Peers::from_toml(&bad_role).unwrap_err().to_string();
        assert!(err.contains("peer 1") && err.contains("hob"), "{err}");
    }
}
