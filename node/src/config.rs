//! The box's configuration: TOML with documented defaults, every field optional.
//!
//! [`DEFAULT_CONFIG`] is the commented default file that `culao config` prints; a test checks
//! that it parses to [`Config::default`], so the text and the code cannot drift apart.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crdt_model::NodeId;
use serde::Deserialize;

/// The commented default configuration.
pub const DEFAULT_CONFIG: &str = r#"# culao box configuration. Every field is optional: the values shown are the defaults.

# Where the store and the identity key (identity.key, mode 0600) live.
data_dir = "./culao-data"

# The enrollment bundle made by `culao provision node` (identity, certificate, the network
# authority's key, peers). Without one the box runs open, for development only: it syncs
# with other open boxes and refuses enrolled ones.
# bundle = "/etc/culao/bundle"

[http]
# Address of the HTTP API (/healthz, /v1/status, /v1/docs/...).
listen = "127.0.0.1:7070"
# Also serve the API over HTTPS here, with the bundle's TLS certificate (clients trust the
# network's tls/ca.pem). Needs a bundle. Off by default.
# tls_listen = "0.0.0.0:7443"

[sync]
# UDP address of the iroh (QUIC) endpoint that speaks the sync protocol.
listen = "0.0.0.0:7071"
# Bytes of entries sent per round trip on each session: the knob for slow links.
round_budget_bytes = 262144
# Wait before the first retry of an unreachable peer; doubles up to the maximum.
reconnect_min_ms = 500
reconnect_max_ms = 30000
# Give up a connection attempt after this long.
connect_timeout_ms = 5000

# Peers to keep a session with: node id (64 hex digits) and direct addresses.
# Without peers the box only accepts sessions that others open.
# [[sync.peers]]
# id = "0123...cdef"
# addrs = ["192.0.2.10:7071"]

[store]
# Documents kept in memory; the others are read from disk when used.
cache_docs = 1024
# Bytes of sled page cache.
cache_bytes = 33554432
# Most local writes made durable by one flush (group commit).
group_commit_max_writes = 1024
"#;

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("cannot read config {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config {}: {source}", path.display())]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("peer {value:?}: expected NODE_ID@HOST:PORT with a 64-hex-digit node id")]
    Peer { value: String },
    #[error("{field} must be {rule}, got {value}")]
    Invalid {
        field: &'static str,
        rule: &'static str,
        value: String,
    },
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub data_dir: PathBuf,
    pub bundle: Option<PathBuf>,
    pub http: HttpConfig,
    pub sync: SyncConfig,
    pub store: StoreConfig,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    pub tls_listen: Option<SocketAddr>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct SyncConfig {
    pub listen: SocketAddr,
    pub round_budget_bytes: usize,
    pub reconnect_min_ms: u64,
    pub reconnect_max_ms: u64,
    pub connect_timeout_ms: u64,
    pub peers: Vec<PeerConfig>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    #[serde(deserialize_with = "node_id")]
    pub id: NodeId,
    pub addrs: Vec<SocketAddr>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    pub cache_docs: usize,
    pub cache_bytes: u64,
    pub group_commit_max_writes: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./culao-data"),
            bundle: None,
            http: HttpConfig::default(),
            sync: SyncConfig::default(),
            store: StoreConfig::default(),
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 7070)),
            tls_listen: None,
        }
    }
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 7071)),
            round_budget_bytes: 256 << 10,
            reconnect_min_ms: 500,
            reconnect_max_ms: 30_000,
            connect_timeout_ms: 5_000,
            peers: Vec::new(),
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            cache_docs: 1024,
            cache_bytes: 32 << 20,
            group_commit_max_writes: 1024,
        }
    }
}

fn node_id<'de, D: serde::Deserializer<'de>>(de: D) -> Result<NodeId, D::Error> {
    let text = String::deserialize(de)?;
    NodeId::from_str(&text).map_err(serde::de::Error::custom)
}

impl Config {
    /// Reads a config file; fields it leaves out keep their defaults.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let config: Config = toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values that parse but cannot work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let sync = &self.sync;
        if sync.round_budget_bytes < 1024 {
            return Err(ConfigError::Invalid {
                field: "sync.round_budget_bytes",
                rule: "at least 1024",
                value: sync.round_budget_bytes.to_string(),
            });
        }
        if sync.reconnect_min_ms == 0 || sync.reconnect_min_ms > sync.reconnect_max_ms {
            return Err(ConfigError::Invalid {
                field: "sync.reconnect_min_ms",
                rule: "above 0 and at most sync.reconnect_max_ms",
                value: sync.reconnect_min_ms.to_string(),
            });
        }
        if self.store.group_commit_max_writes == 0 {
            return Err(ConfigError::Invalid {
                field: "store.group_commit_max_writes",
                rule: "at least 1",
                value: "0".into(),
            });
        }
        Ok(())
    }
}

impl FromStr for PeerConfig {
    type Err = ConfigError;

    /// Parses `NODE_ID@HOST:PORT` (host an IP address).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ConfigError::Peer {
            value: s.to_owned(),
        };
        let (id, addr) = s.split_once('@').ok_or_else(err)?;
        let id = NodeId::from_str(id).map_err(|_| err())?;
        let addr = SocketAddr::from_str(addr).map_err(|_| err())?;
        Ok(Self {
            id,
            addrs: vec![addr],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_commented_default_is_the_default() {
        let parsed: Config = toml::from_str(DEFAULT_CONFIG).unwrap();
        assert_eq!(parsed, Config::default());
    }

    #[test]
    fn unknown_fields_and_bad_values_are_named() {
        let err = toml::from_str::<Config>("[http]\nlisten = 5").unwrap_err();
        assert!(err.to_string().contains("listen"), "{err}");
        let err = toml::from_str::<Config>("colour = 1").unwrap_err();
        assert!(err.to_string().contains("colour"), "{err}");
        let config: Config = toml::from_str("[sync]\nround_budget_bytes = 3").unwrap();
        assert!(matches!(
            config.validate(),
            Err(ConfigError::Invalid {
                field: "sync.round_budget_bytes",
                ..
            })
        ));
    }

    #[test]
    fn peers_parse_from_the_command_line_form() {
        let id = "ab".repeat(32);
        let peer: PeerConfig = format!("{id}@127.0.0.1:7071").parse().unwrap();
        assert_eq!(peer.id.to_string(), id);
        assert!("nope@1.2.3.4:5".parse::<PeerConfig>().is_err());
        assert!(format!("{id}@localhost").parse::<PeerConfig>().is_err());
    }
}
