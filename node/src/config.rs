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

[mqtt]
# Sync with other boxes through an MQTT broker (docs/mqtt.md): `mqtt://HOST:PORT`, or
# `mqtts://HOST:PORT` for TLS. Without a broker the box does not use MQTT.
# broker = "mqtt://192.0.2.20:1883"
# For mqtts: the CA that signed the broker's certificate (PEM). Without one, the bundle's
# tls/ca.pem (a broker run by a box of the network).
# ca_file = "/etc/culao/broker-ca.pem"
# Credentials for a broker culao does not run, if it asks for them. Without a username an
# enrolled box logs in with its signed token, which a culao box's broker checks.
# username = "culao-port"
# password = "..."
# Where the sync tree starts: topics are {topic_prefix}/{network id}/sync/{to}/{from}. A culao
# broker holds boxes on its TLS listener to /tenants/{network id}/, so keep the default there.
topic_prefix = "/tenants"
# Largest MQTT packet sent or accepted, in bytes: frames are cut into chunks that fit.
# Set it to the broker's limit (mosquitto: message_size_limit; rumqttd: max_payload_size).
max_packet_bytes = 65536
# A live session with nothing to say sends a ping this often...
ping_ms = 5000
# ...and is ended (then reopened) when nothing came from the peer for this long.
idle_timeout_ms = 20000
# A peer also listed in [[sync.peers]] is synced over iroh; MQTT takes over only after
# iroh has had no session with it for this long.
fallback_after_ms = 5000

[mqtt.server]
# Run an MQTT broker on this box (rumqttd) for its site's devices and for boxes that reach
# each other through it (docs/mqtt.md, "The embedded broker").
enabled = false
# Plain TCP address of the broker. Port 0 picks a free port (logged at start). On an
# enrolled box only boxes may log in here (with their signed token).
listen = "0.0.0.0:1883"
# Also listen with TLS here, with the bundle's certificate. Clients must present a
# certificate from the network's CA (devices: `culao provision device`), and each is held
# to the topics under /tenants/{its certificate's organization}/.
# tls_listen = "0.0.0.0:8883"
# Most clients connected at once.
max_connections = 256
# Devices' logins: `NAME blake3:DIGEST` lines as `culao provision device` prints them
# (`NAME PASSWORD` also works, for development). Read again at every device login:
# delete a line to shut its device out. Without it no device may log in, and an open box
# (no bundle) admits anonymous clients.
# users_file = "/etc/culao/mqtt-users"

# Peers to open MQTT sessions with, by node id. Without peers the box only answers
# sessions that others open through the broker.
# [[mqtt.peers]]
# id = "0123...cdef"

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
    pub mqtt: MqttConfig,
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

/// Sync through an MQTT broker (`docs/mqtt.md`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct MqttConfig {
    /// `mqtt://HOST:PORT` or `mqtts://HOST:PORT`; `None`: no MQTT.
    pub broker: Option<String>,
    /// The broker's CA for `mqtts`; `None`: the bundle's `tls/ca.pem`.
    pub ca_file: Option<PathBuf>,
    pub username: Option<String>,
    pub password: Option<Password>,
    pub topic_prefix: String,
    pub max_packet_bytes: usize,
    pub ping_ms: u64,
    pub idle_timeout_ms: u64,
    pub fallback_after_ms: u64,
    pub server: MqttServerConfig,
    pub peers: Vec<MqttPeerConfig>,
}

/// The embedded broker.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct MqttServerConfig {
    pub enabled: bool,
    pub listen: SocketAddr,
    /// `None`: no TLS listener.
    pub tls_listen: Option<SocketAddr>,
    pub max_connections: usize,
    /// Devices' logins; `None`: no device may log in (an open box admits anyone).
    pub users_file: Option<PathBuf>,
}

impl Default for MqttServerConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            listen: SocketAddr::from(([0, 0, 0, 0], 1883)),
            tls_listen: None,
            max_connections: 256,
            users_file: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MqttPeerConfig {
    #[serde(deserialize_with = "node_id")]
    pub id: NodeId,
}

/// A password from the config file; its `Debug` prints a placeholder.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Password(pub String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(…)")
    }
}

impl Default for MqttConfig {
    fn default() -> Self {
        Self {
            broker: None,
            ca_file: None,
            username: None,
            password: None,
            topic_prefix: "/tenants".into(),
            max_packet_bytes: 64 << 10,
            ping_ms: 5_000,
            idle_timeout_ms: 20_000,
            fallback_after_ms: 5_000,
            server: MqttServerConfig::default(),
            peers: Vec::new(),
        }
    }
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
            mqtt: MqttConfig::default(),
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
        let mqtt = &self.mqtt;
        if mqtt.max_packet_bytes < 1024 || mqtt.max_packet_bytes > 256 << 20 {
            return Err(ConfigError::Invalid {
                field: "mqtt.max_packet_bytes",
                rule: "between 1024 and 268435456 (MQTT's limit)",
                value: mqtt.max_packet_bytes.to_string(),
            });
        }
        if mqtt.ping_ms == 0 || mqtt.idle_timeout_ms <= mqtt.ping_ms {
            return Err(ConfigError::Invalid {
                field: "mqtt.idle_timeout_ms",
                rule: "above mqtt.ping_ms, itself above 0",
                value: mqtt.idle_timeout_ms.to_string(),
            });
        }
        let prefix = &mqtt.topic_prefix;
        if prefix.is_empty() || prefix.ends_with('/') || prefix.contains(['+', '#', '\0']) {
            return Err(ConfigError::Invalid {
                field: "mqtt.topic_prefix",
                rule: "a topic without wildcards (+, #) that does not end with '/'",
                value: prefix.clone(),
            });
        }
        if let Some(broker) = &mqtt.broker
            && crate::mqtt::BrokerUrl::parse(broker).is_none()
        {
            return Err(ConfigError::Invalid {
                field: "mqtt.broker",
                rule: "mqtt://HOST:PORT or mqtts://HOST:PORT",
                value: broker.clone(),
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
    fn an_mqtt_section_parses_and_hides_its_password() {
        let id = "ab".repeat(32);
        let text = format!(
            "[mqtt]\nbroker = \"mqtt://127.0.0.1:1883\"\npassword = \"hunter2\"\n\
             [[mqtt.peers]]\nid = \"{id}\"\n"
        );
        let config: Config = toml::from_str(&text).unwrap();
        config.validate().unwrap();
        assert_eq!(config.mqtt.peers[0].id.to_string(), id);
        assert!(!format!("{config:?}").contains("hunter2"));
        let config: Config = toml::from_str("[mqtt]\nbroker = \"http://x\"").unwrap();
        assert!(matches!(
            config.validate(),
            Err(ConfigError::Invalid {
                field: "mqtt.broker",
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
