//! The embedded MQTT broker (rumqttd), for the site's devices and for boxes that reach each
//! other only through this box.
//!
//! rumqttd 0.20 has quirks this module contains:
//!
//! - its default router configuration is all zeros and silently breaks the broker, so every
//!   field is set here, with memory bounds sized for a box;
//! - `Broker::start` never returns and cannot be stopped, so the broker runs on a thread of
//!   its own for the life of the process; a panic or an error there is logged and ends the
//!   broker, never the box;
//! - it cannot report the port it bound, so each address is bound here first (which also
//!   turns a busy port into a start error instead of a silent broker thread failure) and a
//!   port 0 is resolved to a free port before rumqttd gets it.
//!
//! Who may connect, and to which topics:
//!
//! - the **TLS listener** asks every client for a certificate from the network's TLS CA
//!   (rumqttd's `verify-client-cert`), and holds each client to the topics under
//!   `/tenants/{O}/`, O the certificate's organization (rumqttd's `validate-tenant-prefix`):
//!   a device's O is its name, a box's O its network id, so a device reaches only its own
//!   topics and boxes only their network's sync tree;
//! - the **plain listener** holds no one to anything, so on an enrolled box it admits boxes
//!   only, by their signed login token; devices are refused there;
//! - every client logs in ([`login`](super::login)): boxes with a token checked against the
//!   network's trust, devices with the password whose digest is in the users file. An open
//!   (development) box without a users file admits anyone, and says so at start.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;

use rumqttd::{Config, ConnectionSettings, RouterConfig, ServerSettings, TlsConfig};
use tracing::{error, info, warn};

use super::login::{Gatekeeper, Listener, UsersError, read_users};
use crate::trust::TrustHandle;

/// Why the embedded broker could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BrokerError {
    #[error("cannot listen for MQTT on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("MQTT over TLS on {addr} needs the TLS certificate of an enrollment bundle (--bundle)")]
    TlsWithoutBundle { addr: SocketAddr },
    #[error("cannot start the broker's thread: {0}")]
    Thread(std::io::Error),
    #[error(transparent)]
    Users(#[from] UsersError),
}

/// What the broker needs.
#[derive(Debug, Clone)]
pub struct BrokerSettings {
    pub listen: SocketAddr,
    pub tls_listen: Option<SocketAddr>,
    /// The box's certificate, key and network CA files (PEM), from its bundle.
    pub tls_files: Option<TlsFiles>,
    pub max_connections: usize,
    pub max_packet_bytes: usize,
    /// Devices' `USER blake3:DIGEST` (or `USER PASSWORD`) lines.
    pub users_file: Option<PathBuf>,
    /// The box's trust, which checks boxes' login tokens; `None` for an open box.
    pub trust: Option<TrustHandle>,
}

/// The PEM files of the TLS listener.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// The network's TLS CA: client certificates must chain to it.
    pub ca: PathBuf,
}

/// The addresses the broker listens on.
#[derive(Debug, Clone, Copy)]
pub struct RunningBroker {
    pub tcp: SocketAddr,
    pub tls: Option<SocketAddr>,
}

/// Binds and releases `addr`, returning it with a concrete port.
fn claim(addr: SocketAddr) -> Result<SocketAddr, BrokerError> {
    let bind_err = |source| BrokerError::Bind { addr, source };
    let listener = TcpListener::bind(addr).map_err(bind_err)?;
    listener.local_addr().map_err(bind_err)
}

/// Starts the broker on its own thread; returns once its addresses are known.
pub fn start(settings: &BrokerSettings) -> Result<RunningBroker, BrokerError> {
    let tcp = claim(settings.listen)?;
    let tls = match (settings.tls_listen, &settings.tls_files) {
        (None, _) => None,
        (Some(addr), None) => return Err(BrokerError::TlsWithoutBundle { addr }),
        (Some(addr), Some(files)) => Some((claim(addr)?, files.clone())),
    };

    if let Some(path) = &settings.users_file {
        // Read once now so that a bad file is a start error, not a refused login later.
        read_users(path)?;
    }
    let gatekeeper = |listener| Gatekeeper {
        listener,
        trust: settings.trust.clone(),
        users_file: settings.users_file.clone(),
    };
    if gatekeeper(Listener::Plain).admits_anyone() {
        warn!(
            "the embedded MQTT broker admits anonymous clients (open box without mqtt.server.users_file): development only"
        );
    }
    let server =
        |name: &str, listen: SocketAddr, tls: Option<TlsConfig>, listener| ServerSettings {
            name: name.to_owned(),
            listen,
            tls,
            next_connection_delay_ms: 1,
            connections: connection_settings(settings, gatekeeper(listener)),
        };
    let mut servers = HashMap::new();
    servers.insert(
        "tcp".to_owned(),
        server("culao-tcp", tcp, None, Listener::Plain),
    );
    if let Some((addr, files)) = &tls {
        let files_config = TlsConfig::Rustls {
            capath: Some(files.ca.display().to_string()),
            certpath: files.cert.display().to_string(),
            keypath: files.key.display().to_string(),
        };
        servers.insert(
            "tls".to_owned(),
            server("culao-tls", *addr, Some(files_config), Listener::Tls),
        );
    }
    let config = Config {
        id: 0,
        router: router_config(settings),
        v4: Some(servers),
        ..Config::default()
    };

    std::thread::Builder::new()
        .name("culao-mqtt-broker".into())
        .spawn(move || {
            // rumqttd's state is its own and is dropped with the thread: nothing of it is
            // observed after a panic.
            let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
                rumqttd::Broker::new(config)
                    .start()
                    .map_err(|err| err.to_string())
            }));
            match run {
                Ok(Ok(())) => warn!("the embedded MQTT broker stopped"),
                Ok(Err(err)) => error!(cause = %err, "the embedded MQTT broker failed; the box runs on without it"),
                Err(_) => error!("the embedded MQTT broker panicked; the box runs on without it"),
            }
        })
        .map_err(BrokerError::Thread)?;
    let running = RunningBroker {
        tcp,
        tls: tls.map(|(addr, _)| addr),
    };
    info!(tcp = %running.tcp, tls = ?running.tls, "embedded MQTT broker started");
    Ok(running)
}

/// One listener's connection limits and its login check.
fn connection_settings(settings: &BrokerSettings, gatekeeper: Gatekeeper) -> ConnectionSettings {
    let mut connections = ConnectionSettings {
        connection_timeout_ms: 5_000,
        max_payload_size: settings.max_packet_bytes,
        max_inflight_count: 256,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    if !gatekeeper.admits_anyone() {
        let gatekeeper = Arc::new(gatekeeper);
        connections.set_auth_handler(move |client_id, user, password| {
            let gatekeeper = gatekeeper.clone();
            async move { gatekeeper.check(&client_id, &user, &password) }
        });
    }
    connections
}

/// Every field set: rumqttd's default (all zeros) accepts connections and then drops
/// everything. Each subscribed filter keeps at most `segments × segment size` of messages.
fn router_config(settings: &BrokerSettings) -> RouterConfig {
    RouterConfig {
        max_connections: settings.max_connections,
        max_outgoing_packet_count: 256,
        // A segment must hold the largest packet; four of them bound a filter's log.
        max_segment_size: (4 << 20).max(settings.max_packet_bytes * 2),
        max_segment_count: 4,
        custom_segment: None,
        initialized_filters: None,
        shared_subscriptions_strategy: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_port_is_a_start_error_not_a_silent_broker_failure() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        assert!(matches!(claim(addr), Err(BrokerError::Bind { .. })));
        let free = claim("127.0.0.1:0".parse().unwrap()).unwrap();
        assert_ne!(free.port(), 0);
    }
}
