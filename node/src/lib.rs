//! The culao box runtime: the store, the replica thread, the iroh transport and the HTTP
//! surface, assembled by [`start`].
//!
//! # The map
//!
//! - [`config`]: the TOML configuration and its commented defaults.
//! - [`identity`]: the box's ed25519 key file (its node id and iroh endpoint id).
//! - [`store`]: the replica's store on sled, behind `crdt_model::Store`.
//! - [`core`]: the thread that owns the replica and every session; group commit.
//! - [`trust`]: the enrolled box's certificates and revocations, the authentication
//!   preamble of every connection, and the gate that refuses entries from non-writers.
//! - [`transport`]: the iroh endpoint, accepting and dialling, framing, backoff.
//! - [`mqtt`]: sync sessions carried through an MQTT broker.
//! - [`http`]: `/healthz`, `/v1/status`, `/v1/docs/{scope}/{id}`, `/v1/audit`,
//!   `/v1/revocations`.
//! - [`https`]: the same API over TLS with the bundle's certificate.
//!
//! # Durability
//!
//! A `PUT` is answered after its change is committed to sled and sled has fsynced
//! (`Db::flush`). Writes that arrive together share one flush. Entries received from peers
//! are committed at once but flushed by sled's background flush (every 500 ms): losing them
//! in a crash costs a resend, never a record, because the peer that sent them still holds
//! them. If a commit or a flush fails, the box stops accepting writes, answers 503, and
//! must be restarted: it never pretends a write is durable when it may not be.
//!
//! # Shutdown
//!
//! [`Node::shutdown`] stops, in order: the HTTP server (in-flight requests finish), the
//! sync endpoint (sessions close), then the replica thread, which commits and flushes what
//! is left before it exits.

pub mod config;
pub mod core;
pub mod enrol;
pub mod http;
pub mod https;
pub mod identity;
pub mod mqtt;
pub mod store;
pub mod transport;
pub mod trust;

use std::net::SocketAddr;
use std::time::Duration;

use crdt_model::session::SessionConfig;
use crdt_model::{NodeId, Replica};
use tokio::task::JoinHandle;
use tracing::{info, warn};

/// The store's owner, in its `meta` tree.
const META_NODE: &str = "node";

use crate::config::{Config, PeerConfig};
use crate::core::{CoreConfig, CoreHandle};
use crate::store::{SledStore, StoreError};

/// Why a box could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Identity(#[from] identity::IdentityError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot open the replica: {0}")]
    Replica(#[from] crdt_model::ReplicaError),
    #[error(transparent)]
    Transport(#[from] transport::TransportError),
    #[error("cannot listen for HTTP on {addr}: {source}")]
    HttpBind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start the replica thread: {0}")]
    Thread(std::io::Error),
    #[error("the store in {} belongs to node {stored}, not to this box's identity {ours}; a store is never reused under another identity", dir.display())]
    OtherIdentity {
        dir: std::path::PathBuf,
        stored: String,
        ours: NodeId,
    },
    #[error("cannot use the bundle: {0}")]
    Bundle(String),
    #[error("HTTPS on {addr} needs the TLS certificate of an enrollment bundle (--bundle)")]
    HttpsWithoutBundle { addr: SocketAddr },
    #[error(transparent)]
    Https(#[from] https::HttpsError),
    #[error(transparent)]
    Mqtt(#[from] mqtt::MqttError),
}

/// What enrollment gives a box: who it is, what it trusts, and whom to dial.
#[derive(Debug)]
pub struct Enrolment {
    pub identity: crdt_model::Identity,
    pub trust: trust::Trust,
    pub peers: Vec<PeerConfig>,
    /// The box's TLS certificate and key (PEM), for HTTPS.
    pub tls: Option<provisioning::tls::TlsCertificate>,
}

/// A running box.
#[derive(Debug)]
pub struct Node {
    pub node_id: NodeId,
    pub http_addr: SocketAddr,
    /// The HTTPS address, when the box serves its API over TLS too.
    pub https_addr: Option<SocketAddr>,
    pub sync_addrs: Vec<SocketAddr>,
    /// The embedded MQTT broker's addresses, when the box runs one.
    pub mqtt_broker: Option<mqtt::broker::RunningBroker>,
    core: CoreHandle,
    endpoint: iroh::Endpoint,
    servers: Vec<JoinHandle<()>>,
    http_stop: tokio::sync::watch::Sender<()>,
    core_thread: std::thread::JoinHandle<()>,
}

/// Starts a box from its configuration: enrolled from `config.bundle` when there is one,
/// open (development) otherwise.
pub async fn start(config: Config) -> Result<Node, StartError> {
    config.validate()?;
    let enrolment = match &config.bundle {
        Some(dir) => Some(enrol::load(dir, chrono::Utc::now().timestamp())?),
        None => None,
    };
    start_with(config, enrolment).await
}

/// Opens the store, starts the replica thread, binds the sync endpoint and the HTTP server.
pub async fn start_with(
    mut config: Config,
    enrolment: Option<Enrolment>,
) -> Result<Node, StartError> {
    config.validate()?;
    let (identity, trust, tls) = match enrolment {
        Some(enrolment) => {
            for peer in enrolment.peers {
                if !config.sync.peers.iter().any(|p| p.id == peer.id) {
                    config.sync.peers.push(peer);
                }
            }
            (enrolment.identity, Some(enrolment.trust), enrolment.tls)
        }
        None => (identity::load_or_create(&config.data_dir)?, None, None),
    };
    let node_id = identity.node_id();
    let secret = identity.secret_bytes();
    let store_dir = config.data_dir.join("store");
    let store = SledStore::open(&store_dir, config.store.cache_bytes)?;
    claim_store(&store, &store_dir, node_id)?;
    let replica = Replica::open(identity, store.clone(), config.store.cache_docs)?;
    info!(node = %node_id.short(), feeds = replica.heads().len(), "store opened");

    let trust = trust
        .map(|trust| restore_trust(trust, &store))
        .map(trust::TrustHandle::new);
    match &trust {
        Some(handle) => {
            let trust = handle.read();
            let me = trust.me();
            info!(role = %me.role, site = %me.site, known = trust.known().count(), revoked = trust.revocations().len(), "enrolled");
        }
        None => warn!(
            "no bundle: this box runs open (development only); it syncs with open boxes and refuses enrolled ones"
        ),
    }
    let enrolled = trust.as_ref().map(|t| {
        let trust = t.read();
        mqtt::Enrolled {
            network: trust.me().network.to_string(),
            certificate: trust.own().clone(),
        }
    });
    let mqtt_link = mqtt::link_config(&config, node_id, &secret, enrolled)?;
    let mqtt_broker = mqtt::start_broker(&config, trust.clone())?;
    let session = SessionConfig {
        round_budget_bytes: config.sync.round_budget_bytes,
        gate: trust
            .clone()
            .map(|t| std::sync::Arc::new(t) as std::sync::Arc<dyn crdt_model::session::FeedGate>),
        ..SessionConfig::default()
    };
    let core_config = CoreConfig {
        session,
        max_batch: config.store.group_commit_max_writes,
        configured_peers: config.sync.peers.iter().map(|p| p.id).collect(),
        trust,
    };
    let (core, core_thread) =
        core::spawn(replica, store, core_config).map_err(StartError::Thread)?;

    let endpoint = transport::bind(secret, config.sync.listen).await?;
    transport::log_bound(&endpoint);
    tokio::spawn(transport::accept_loop(endpoint.clone(), core.clone()));
    for (index, peer) in config.sync.peers.iter().enumerate() {
        let backoff = transport::Backoff::new(
            Duration::from_millis(config.sync.reconnect_min_ms),
            Duration::from_millis(config.sync.reconnect_max_ms),
            u64::from_le_bytes(secret[..8].try_into().unwrap_or_default()) ^ index as u64,
        );
        tokio::spawn(transport::dial_loop(
            endpoint.clone(),
            core.clone(),
            peer.id,
            peer.addrs.clone(),
            backoff,
            Duration::from_millis(config.sync.connect_timeout_ms),
        ));
    }

    let listener = tokio::net::TcpListener::bind(config.http.listen)
        .await
        .map_err(|source| StartError::HttpBind {
            addr: config.http.listen,
            source,
        })?;
    let http_addr = listener
        .local_addr()
        .map_err(|source| StartError::HttpBind {
            addr: config.http.listen,
            source,
        })?;
    let (http_stop, stopped) = tokio::sync::watch::channel(());
    let app = http::router(core.clone());
    let mut stop = stopped.clone();
    let mut servers = vec![tokio::spawn(async move {
        let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = stop.changed().await;
        });
        if let Err(err) = serve.await {
            tracing::error!(cause = %err, "HTTP server failed");
        }
    })];
    if let Some(link) = mqtt_link {
        servers.push(mqtt::link::spawn(link, core.clone(), stopped.clone())?);
    }
    let https_addr = match (config.http.tls_listen, tls) {
        (None, _) => None,
        (Some(addr), None) => return Err(StartError::HttpsWithoutBundle { addr }),
        (Some(addr), Some(tls)) => {
            let tls_config = https::server_config(&tls.cert_pem, &tls.key_pem)?;
            let bind_err = |source| StartError::HttpBind { addr, source };
            let tcp = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(bind_err)?;
            let listener = https::TlsListener::new(tcp, tls_config).map_err(bind_err)?;
            let bound = axum::serve::Listener::local_addr(&listener).map_err(bind_err)?;
            let app = http::router(core.clone());
            let mut stop = stopped.clone();
            servers.push(tokio::spawn(async move {
                let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                    let _ = stop.changed().await;
                });
                if let Err(err) = serve.await {
                    tracing::error!(cause = %err, "HTTPS server failed");
                }
            }));
            Some(bound)
        }
    };
    info!(node = %node_id.short(), http = %http_addr, https = ?https_addr, "box up");

    Ok(Node {
        node_id,
        http_addr,
        https_addr,
        sync_addrs: endpoint.bound_sockets(),
        mqtt_broker,
        core,
        endpoint,
        servers,
        http_stop,
        core_thread,
    })
}

/// Marks the store as this node's, or refuses a store that belongs to another identity.
fn claim_store(store: &SledStore, dir: &std::path::Path, node: NodeId) -> Result<(), StartError> {
    match store.get_meta(META_NODE)? {
        None => {
            store.put_meta(META_NODE, node.as_bytes())?;
            store.flush()?;
            Ok(())
        }
        Some(stored) if stored.as_slice() == node.as_bytes() => Ok(()),
        Some(stored) => Err(StartError::OtherIdentity {
            dir: dir.to_owned(),
            stored: hex::encode(stored),
            ours: node,
        }),
    }
}

/// Adds what earlier sessions taught the box (certificates, revocations) to the bundle's.
fn restore_trust(mut trust: trust::Trust, store: &SledStore) -> trust::Trust {
    let now = chrono::Utc::now().timestamp();
    if let Ok(Some(bytes)) = store.get_meta(core::META_REVOCATIONS)
        && let Ok(list) =
            provisioning::revocation::RevocationList::decode(&bytes, trust.authority())
        && let Err(err) = trust.learn_revocations(&list)
    {
        warn!(cause = %err, "stored revocations do not verify; ignored");
    }
    if let Ok(Some(bytes)) = store.get_meta(core::META_CERTIFICATES) {
        trust.restore_known(&bytes, now);
    }
    trust
}

impl Node {
    pub fn core(&self) -> &CoreHandle {
        &self.core
    }

    /// Stops the box in order; returns once the store is flushed.
    pub async fn shutdown(self) {
        let _ = self.http_stop.send(());
        for server in self.servers {
            let _ = server.await;
        }
        self.endpoint.close().await;
        drop(self.core);
        // Every other handle lives in tasks that end with the endpoint and the server.
        let _ = tokio::task::spawn_blocking(move || self.core_thread.join()).await;
        info!("box stopped");
    }
}
