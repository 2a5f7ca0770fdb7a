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
//! Clients log in with a user name and password from the users file (`mqtt.server.users_file`,
//! one `USER PASSWORD` per line); without that file the broker admits anyone.
//!
//! Known limit: rumqttd 0.20 has no topic ACLs, and this module does not confine a client to
//! its own topics yet (`docs/mqtt.md`): a client that may log in may publish and subscribe
//! anywhere. Give credentials only to trusted clients.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;

use rumqttd::{Config, ConnectionSettings, RouterConfig, ServerSettings, TlsConfig};
use tracing::{error, info, warn};

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
    #[error("cannot read the MQTT users file {}: {source}", path.display())]
    ReadUsers {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("MQTT users file {}, line {line}: expected `USER PASSWORD`", path.display())]
    UsersLine { path: PathBuf, line: usize },
}

/// What the broker needs.
#[derive(Debug, Clone)]
pub struct BrokerSettings {
    pub listen: SocketAddr,
    pub tls_listen: Option<SocketAddr>,
    /// The box's certificate and key files (PEM), from its bundle.
    pub tls_files: Option<(PathBuf, PathBuf)>,
    pub max_connections: usize,
    pub max_packet_bytes: usize,
    /// `USER PASSWORD` lines; `None`: anonymous clients are admitted.
    pub users_file: Option<PathBuf>,
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

    let mut connections = ConnectionSettings {
        connection_timeout_ms: 5_000,
        max_payload_size: settings.max_packet_bytes,
        max_inflight_count: 256,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    if let Some(path) = &settings.users_file {
        let users = Arc::new(read_users(path)?);
        // Our handler rather than rumqttd's table, so that a refused login is logged here,
        // on culao's target, with the user name and never the password.
        connections.set_auth_handler(move |client_id, user, password| {
            let users = users.clone();
            async move {
                let admitted = users.get(&user).is_some_and(|p| *p == password);
                if !admitted {
                    warn!(%client_id, %user, "MQTT login refused");
                }
                admitted
            }
        });
    }
    let server = |name: &str, listen: SocketAddr, tls: Option<TlsConfig>| ServerSettings {
        name: name.to_owned(),
        listen,
        tls,
        next_connection_delay_ms: 1,
        connections: connections.clone(),
    };
    let mut servers = HashMap::new();
    servers.insert("tcp".to_owned(), server("culao-tcp", tcp, None));
    if let Some((addr, (cert, key))) = &tls {
        let files = TlsConfig::Rustls {
            capath: None,
            certpath: cert.display().to_string(),
            keypath: key.display().to_string(),
        };
        servers.insert("tls".to_owned(), server("culao-tls", *addr, Some(files)));
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

/// Reads the users file: one `USER PASSWORD` per line; blank lines and `#` comments skipped.
fn read_users(path: &std::path::Path) -> Result<HashMap<String, String>, BrokerError> {
    let text = std::fs::read_to_string(path).map_err(|source| BrokerError::ReadUsers {
        path: path.to_owned(),
        source,
    })?;
    let mut users = HashMap::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some(user), Some(password), None) => {
                users.insert(user.to_owned(), password.to_owned());
            }
            _ => {
                return Err(BrokerError::UsersLine {
                    path: path.to_owned(),
                    line: index + 1,
                });
            }
        }
    }
    Ok(users)
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

    #[test]
    fn the_users_file_names_its_bad_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        std::fs::write(&path, "# devices\ngate-1 s3cret\n\nreader-2 other\n").unwrap();
        let users = read_users(&path).unwrap();
        assert_eq!(users.get("gate-1").map(String::as_str), Some("s3cret"));
        assert_eq!(users.len(), 2);
        std::fs::write(&path, "gate-1 s3cret\nno-password\n").unwrap();
        assert!(matches!(
            read_users(&path),
            Err(BrokerError::UsersLine { line: 2, .. })
        ));
    }
}
