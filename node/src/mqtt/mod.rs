//! Sync through an MQTT broker: the same sessions as over iroh, carried on topics.
//!
//! # The map
//!
//! - [`topics`]: the topic tree, one topic per direction of a pair of boxes.
//! - [`chunk`]: the chunk header, splitting frames to the broker's packet size and
//!   reassembling them with bounded memory.
//! - [`auth`]: the signed opening, which binds a session to the peer's node key since a
//!   broker, unlike QUIC, proves nothing about who published, and the keys that seal the
//!   session's later frames.
//! - [`link`]: the task that keeps one broker connection and drives a core session per peer.
//! - [`broker`]: the embedded broker (rumqttd) a box may run, with its quirks contained.
//! - [`login`]: who the embedded broker admits, and the signed token a box logs in with.
//!
//! # Invariants
//!
//! - Nothing of the sync protocol reaches the core before the peer's signed preamble has
//!   verified against its node id and the core has admitted the preamble.
//! - Every chunk names its session by both ends' nonces; chunks of another session are
//!   dropped, so a broker's resend after a reconnection never reaches a newer session.
//! - A broker connection lost ends every session over it; each is reopened with new nonces
//!   once the broker is back, and resumes from version vectors (nothing is applied twice:
//!   the replica ignores entries it holds).
//!
//! # Known limits
//!
//! - Frames after the signed opening are sealed (`auth::SessionCipher`); opens, pings and
//!   closes are not, so a party that may publish on a box's inbox topic can end or stall a
//!   session, never read or change what it carries.
//! - An open in a peer's name replaces an admitted session only once the new side's signed
//!   preamble verifies, but it can disturb a session that is still being opened.

pub mod auth;
pub mod broker;
pub mod chunk;
pub mod link;
pub mod login;
pub mod topics;

use std::sync::Arc;
use std::time::Duration;

use crdt_model::NodeId;
use provisioning::Certificate;

use crate::config::Config;
use crate::trust::TrustHandle;

/// A parsed `mqtt.broker` setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    pub host: String,
    pub port: u16,
    pub tls: bool,
}

impl BrokerUrl {
    /// Parses `mqtt://HOST:PORT` or `mqtts://HOST:PORT`.
    pub fn parse(url: &str) -> Option<Self> {
        let (tls, rest) = if let Some(rest) = url.strip_prefix("mqtts://") {
            (true, rest)
        } else {
            (false, url.strip_prefix("mqtt://")?)
        };
        let (host, port) = rest.rsplit_once(':')?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return None;
        }
        Some(Self {
            host: host.to_owned(),
            port: port.parse().ok()?,
            tls,
        })
    }
}

/// Why the MQTT link could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MqttError {
    #[error("mqtt.broker {0:?} is not mqtt://HOST:PORT or mqtts://HOST:PORT")]
    Url(String),
    #[error("mqtts needs a CA: set mqtt.ca_file or enrol the box with a bundle")]
    NoCa,
    #[error("cannot read the broker's CA {}: {source}", path.display())]
    ReadCa {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("the broker's CA is not usable PEM: {0}")]
    Ca(String),
    #[error("cannot read the box's TLS client certificate or key {}: {reason}", path.display())]
    ClientCert {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error(transparent)]
    Broker(#[from] broker::BrokerError),
}

/// What an enrolled box brings to a broker for its login token: its network and
/// certificate. (Its TLS client certificate is read from the bundle in [`link_config`].)
#[derive(Debug, Clone)]
pub struct Enrolled {
    pub network: String,
    pub certificate: Certificate,
}

/// The embedded broker, started when the config enables it; TLS uses the bundle's
/// certificate and asks clients for one from the bundle's CA.
pub fn start_broker(
    config: &Config,
    trust: Option<TrustHandle>,
) -> Result<Option<broker::RunningBroker>, MqttError> {
    let server = &config.mqtt.server;
    if !server.enabled {
        return Ok(None);
    }
    let tls = config.bundle.as_ref().map(|dir| dir.join("tls"));
    let settings = broker::BrokerSettings {
        listen: server.listen,
        tls_listen: server.tls_listen,
        tls_files: tls.map(|dir| broker::TlsFiles {
            cert: dir.join("node.pem"),
            key: dir.join("node.key"),
            ca: dir.join("ca.pem"),
        }),
        max_connections: server.max_connections,
        max_packet_bytes: config.mqtt.max_packet_bytes,
        users_file: server.users_file.clone(),
        trust,
    };
    Ok(Some(broker::start(&settings)?))
}

/// The MQTT link's settings, when the config names a broker; `enrolled` is `None` for an
/// open box.
pub fn link_config(
    config: &Config,
    me: NodeId,
    secret: &[u8; 32],
    enrolled: Option<Enrolled>,
) -> Result<Option<link::LinkConfig>, MqttError> {
    let mqtt = &config.mqtt;
    let Some(url) = &mqtt.broker else {
        return Ok(None);
    };
    let broker = BrokerUrl::parse(url).ok_or_else(|| MqttError::Url(url.clone()))?;
    let bundle_ca = config
        .bundle
        .as_ref()
        .map(|dir| dir.join("tls").join("ca.pem"));
    let tls = match (broker.tls, mqtt.ca_file.as_ref().or(bundle_ca.as_ref())) {
        (false, _) => None,
        (true, Some(path)) => {
            let pem = std::fs::read(path).map_err(|source| MqttError::ReadCa {
                path: path.clone(),
                source,
            })?;
            let client = match &config.bundle {
                Some(dir) => Some(client_identity(&dir.join("tls"))?),
                None => None,
            };
            Some(tls_client_config(&pem, client)?)
        }
        (true, None) => return Err(MqttError::NoCa),
    };
    // A configured user name wins (a broker culao does not run); an enrolled box otherwise
    // logs in with its signed token, which a culao broker checks.
    let login = match (&mqtt.username, &enrolled) {
        (Some(user), _) => link::Login::Password {
            user: user.clone(),
            password: mqtt.password.clone().map(|p| p.0).unwrap_or_default(),
        },
        (None, Some(enrolled)) => link::Login::Box(Box::new(login::BoxLogin {
            key: auth::NodeKey::from_secret_bytes(secret),
            node: me,
            certificate: enrolled.certificate.clone(),
            network: enrolled.network.clone(),
        })),
        (None, None) => link::Login::Anonymous,
    };

    Ok(Some(link::LinkConfig {
        broker,
        tls,
        login,
        network: enrolled.map_or_else(|| "open".to_owned(), |e| e.network),
        topic_prefix: mqtt.topic_prefix.clone(),
        me,
        key: auth::NodeKey::from_secret_bytes(secret),
        max_packet_bytes: mqtt.max_packet_bytes,
        ping: Duration::from_millis(mqtt.ping_ms),
        idle_timeout: Duration::from_millis(mqtt.idle_timeout_ms),
        fallback_after: Duration::from_millis(mqtt.fallback_after_ms),
        reconnect_min: Duration::from_millis(config.sync.reconnect_min_ms),
        reconnect_max: Duration::from_millis(config.sync.reconnect_max_ms),
        peers: mqtt.peers.iter().map(|p| p.id).collect(),
        iroh_peers: config.sync.peers.iter().map(|p| p.id).collect(),
    }))
}

/// The box's TLS certificate chain and key (its bundle's `tls/node.pem`, `tls/node.key`),
/// presented to brokers that ask for a client certificate.
pub type ClientIdentity = (
    Vec<rustls::pki_types::CertificateDer<'static>>,
    rustls::pki_types::PrivateKeyDer<'static>,
);

/// Reads the bundle's TLS certificate and key from `tls_dir`.
pub fn client_identity(tls_dir: &std::path::Path) -> Result<ClientIdentity, MqttError> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let (cert, key) = (tls_dir.join("node.pem"), tls_dir.join("node.key"));
    let unreadable = |path: &std::path::Path| {
        let path = path.to_owned();
        move |err: rustls::pki_types::pem::Error| MqttError::ClientCert {
            path,
            reason: err.to_string(),
        }
    };
    let chain = CertificateDer::pem_file_iter(&cert)
        .map_err(unreadable(&cert))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(unreadable(&cert))?;
    let key_der = PrivateKeyDer::from_pem_file(&key).map_err(unreadable(&key))?;
    Ok((chain, key_der))
}

/// A rustls client configuration (ring) that trusts only the certificates in `ca_pem`, and
/// presents `client` when the broker asks for a certificate.
pub fn tls_client_config(
    ca_pem: &[u8],
    client: Option<ClientIdentity>,
) -> Result<Arc<rustls::ClientConfig>, MqttError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;

    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        let cert = cert.map_err(|err| MqttError::Ca(err.to_string()))?;
        roots
            .add(cert)
            .map_err(|err| MqttError::Ca(err.to_string()))?;
    }
    if roots.is_empty() {
        return Err(MqttError::Ca("no certificate in it".into()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| MqttError::Ca(err.to_string()))?
        .with_root_certificates(roots);
    let config = match client {
        Some((chain, key)) => config
            .with_client_auth_cert(chain, key)
            .map_err(|err| MqttError::Ca(err.to_string()))?,
        None => config.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls_parse_with_their_scheme() {
        let url = BrokerUrl::parse("mqtts://broker.example:8883").unwrap();
        assert_eq!(
            (url.host.as_str(), url.port, url.tls),
            ("broker.example", 8883, true)
        );
        assert!(!BrokerUrl::parse("mqtt://127.0.0.1:1883").unwrap().tls);
        assert_eq!(BrokerUrl::parse("mqtt://[::1]:1883").unwrap().host, "::1");
        for bad in ["tcp://x:1", "mqtt://x", "mqtt://:1883", "mqtt://x:port"] {
            assert!(BrokerUrl::parse(bad).is_none(), "{bad}");
        }
    }
}
