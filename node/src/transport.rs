//! The iroh (QUIC) transport: one endpoint, one ALPN, one bidirectional stream per session.
//!
//! Relays and address lookup are off: the island has no internet, so peers are dialled by
//! node id and the direct socket addresses from the configuration. Each message travels as a
//! 4-byte big-endian length and the message; a length over the protocol's limit ends the
//! connection before anything is read. Peers that cannot be reached are retried with
//! exponential backoff and jitter.

use std::net::SocketAddr;
use std::time::Duration;

use crdt_model::NodeId;
use crdt_model::wire::MAX_MESSAGE_BYTES;
use iroh::endpoint::{
    Connection, IdleTimeout, QuicTransportConfig, RecvStream, SendStream, presets,
};
use iroh::{Endpoint, EndpointAddr, PublicKey, SecretKey, TransportAddr};
use tokio::sync::mpsc;
use tracing::{Instrument as _, debug, info, info_span, warn};

use crate::core::{CoreHandle, OpenRefused};

/// The sync protocol's ALPN.
pub const ALPN: &[u8] = b"culao/sync/1";
/// A silent connection is declared dead after this long; keep-alives keep a live one open.
const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
const KEEP_ALIVE: Duration = Duration::from_secs(2);
/// A session that lasted this long resets the backoff.
const HEALTHY_SESSION: Duration = Duration::from_secs(10);
/// A peer that has not sent its preamble by then is not a culao box worth waiting for.
const PREAMBLE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    #[error("cannot bind the sync endpoint on {addr}: {reason}")]
    Bind { addr: SocketAddr, reason: String },
    #[error("peer id {0} is not a valid ed25519 key")]
    PeerKey(NodeId),
}

/// Binds the endpoint with the box's key on `listen`.
pub async fn bind(secret: [u8; 32], listen: SocketAddr) -> Result<Endpoint, TransportError> {
    let bind_err = |reason: String| TransportError::Bind {
        addr: listen,
        reason,
    };
    let idle = IdleTimeout::try_from(IDLE_TIMEOUT).map_err(|e| bind_err(e.to_string()))?;
    let transport = QuicTransportConfig::builder()
        .max_idle_timeout(Some(idle))
        .keep_alive_interval(KEEP_ALIVE)
        .build();
    Endpoint::builder(presets::Minimal)
        .secret_key(SecretKey::from_bytes(&secret))
        .alpns(vec![ALPN.to_vec()])
        .transport_config(transport)
        .clear_ip_transports()
        .bind_addr(listen)
        .map_err(|e| bind_err(e.to_string()))?
        .bind()
        .await
        .map_err(|e| bind_err(e.to_string()))
}

fn node_id(key: PublicKey) -> NodeId {
    NodeId::from_bytes(*key.as_bytes())
}

/// Accepts connections until the endpoint closes.
pub async fn accept_loop(endpoint: Endpoint, core: CoreHandle) {
    while let Some(incoming) = endpoint.accept().await {
        let core = core.clone();
        tokio::spawn(async move {
            let connection = match incoming.await {
                Ok(connection) => connection,
                Err(err) => {
                    debug!(cause = %err, "incoming connection failed");
                    return;
                }
            };
            let peer = node_id(connection.remote_id());
            let span = info_span!("session", peer = %peer.short());
            async move {
                match connection.accept_bi().await {
                    Ok((send, recv)) => {
                        run_session(&core, peer, false, &connection, send, recv).await
                    }
                    Err(err) => debug!(cause = %err, "peer opened no stream"),
                }
            }
            .instrument(span)
            .await;
        });
    }
}

/// Keeps a session with one configured peer: dials when there is none, backs off on failure.
pub async fn dial_loop(
    endpoint: Endpoint,
    core: CoreHandle,
    peer: NodeId,
    addrs: Vec<SocketAddr>,
    backoff: Backoff,
    connect_timeout: Duration,
) {
    let span = info_span!("dial", peer = %peer.short());
    async move {
        let Ok(key) = PublicKey::from_bytes(peer.as_bytes()) else {
            warn!("configured peer id is not a valid key; not dialling it");
            return;
        };
        let addr = EndpointAddr::from_parts(key, addrs.iter().copied().map(TransportAddr::Ip));
        let mut backoff = backoff;
        loop {
            if core.is_connected(peer).await {
                tokio::time::sleep(backoff.min).await;
                continue;
            }
            let started = tokio::time::Instant::now();
            match tokio::time::timeout(connect_timeout, endpoint.connect(addr.clone(), ALPN)).await
            {
                Ok(Ok(connection)) => match connection.open_bi().await {
                    Ok((send, recv)) => {
                        run_session(&core, peer, true, &connection, send, recv).await
                    }
                    Err(err) => debug!(cause = %err, "cannot open a stream"),
                },
                Ok(Err(err)) => debug!(cause = %err, "connect failed"),
                Err(_) => debug!("connect timed out"),
            }
            if endpoint.is_closed() {
                return;
            }
            if started.elapsed() > HEALTHY_SESSION {
                backoff.reset();
            }
            tokio::time::sleep(backoff.next_wait()).await;
        }
    }
    .instrument(span)
    .await;
}

/// Moves frames between one stream and the core until either side ends.
async fn run_session(
    core: &CoreHandle,
    peer: NodeId,
    dialed: bool,
    connection: &Connection,
    send: SendStream,
    mut recv: RecvStream,
) {
    let mut send = send;
    let theirs = match exchange_preambles(core, &mut send, &mut recv).await {
        Ok(theirs) => theirs,
        Err(reason) => {
            debug!(%reason, "no preamble; connection closed");
            connection.close(0u32.into(), b"no preamble");
            return;
        }
    };
    let (outbox, frames) = mpsc::unbounded_channel();
    let id = match core.open(peer, dialed, theirs, outbox).await {
        Ok(id) => id,
        Err(refused @ OpenRefused::Untrusted(_)) => {
            connection.close(1u32.into(), b"not admitted");
            debug!(reason = %refused, "connection refused");
            return;
        }
        Err(refused) => {
            debug!(reason = %refused, "connection not used");
            connection.close(0u32.into(), b"duplicate");
            return;
        }
    };
    debug!(session = id, dialed, "connected");
    let writer = tokio::spawn(write_frames(send, frames));
    let reason = loop {
        match read_frame(&mut recv).await {
            Ok(Some(bytes)) => core.frame(id, bytes).await,
            Ok(None) => break "peer closed the stream".to_owned(),
            Err(err) => break err,
        }
        if writer.is_finished() {
            break "session ended".to_owned();
        }
    };
    core.closed(id, reason.clone()).await;
    // The writer ends once the core drops the outbox, after sending what was queued.
    let _ = writer.await;
    connection.close(0u32.into(), b"bye");
    debug!(session = id, %reason, "disconnected");
}

/// Sends this box's preamble and reads the peer's (see [`crate::trust`]).
async fn exchange_preambles(
    core: &CoreHandle,
    send: &mut SendStream,
    recv: &mut RecvStream,
) -> Result<Vec<u8>, String> {
    let mine = core.preamble().await.ok_or("the box is shutting down")?;
    write_frame(send, &mine)
        .await
        .map_err(|err| format!("write failed: {err}"))?;
    match tokio::time::timeout(PREAMBLE_TIMEOUT, read_frame(recv)).await {
        Ok(Ok(Some(theirs))) => Ok(theirs),
        Ok(Ok(None)) => Err("peer closed before its preamble".into()),
        Ok(Err(err)) => Err(err),
        Err(_) => Err("peer sent no preamble in time".into()),
    }
}

async fn write_frames(mut send: SendStream, mut frames: mpsc::UnboundedReceiver<Vec<u8>>) {
    while let Some(frame) = frames.recv().await {
        if write_frame(&mut send, &frame).await.is_err() {
            return;
        }
    }
    let _ = send.finish();
    let _ = send.stopped().await;
}

/// One frame: its length (`u32be`), then its bytes.
async fn write_frame(
    send: &mut SendStream,
    frame: &[u8],
) -> Result<(), iroh::endpoint::WriteError> {
    send.write_all(&(frame.len() as u32).to_be_bytes()).await?;
    send.write_all(frame).await
}

async fn read_frame(recv: &mut RecvStream) -> Result<Option<Vec<u8>>, String> {
    let mut len = [0u8; 4];
    match recv.read_exact(&mut len).await {
        Ok(()) => {}
        Err(iroh::endpoint::ReadExactError::FinishedEarly(0)) => return Ok(None),
        Err(err) => return Err(format!("read failed: {err}")),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_MESSAGE_BYTES {
        return Err(format!(
            "frame of {len} bytes exceeds the limit of {MAX_MESSAGE_BYTES}"
        ));
    }
    let mut bytes = vec![0u8; len];
    recv.read_exact(&mut bytes)
        .await
        .map_err(|err| format!("read failed: {err}"))?;
    Ok(Some(bytes))
}

/// Exponential backoff with jitter between `min` and `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    current: Duration,
    seed: u64,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration, seed: u64) -> Self {
        Self {
            min,
            max,
            current: min,
            seed: seed | 1,
        }
    }

    pub fn reset(&mut self) {
        self.current = self.min;
    }

    /// The next wait: the current step plus up to half of it again, then the step doubles.
    pub fn next_wait(&mut self) -> Duration {
        // xorshift: jitter only needs to keep two boxes from retrying in lockstep.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let jitter = self.current.mul_f64((self.seed % 1000) as f64 / 2000.0);
        let wait = self.current + jitter;
        self.current = (self.current * 2).min(self.max);
        wait.min(self.max)
    }
}

pub fn log_bound(endpoint: &Endpoint) {
    for addr in endpoint.bound_sockets() {
        info!(%addr, "sync endpoint bound");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_maximum_and_resets() {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1), 7);
        let waits: Vec<Duration> = (0..8).map(|_| backoff.next_wait()).collect();
        assert!(waits[0] >= Duration::from_millis(100) && waits[0] <= Duration::from_millis(150));
        assert!(waits.iter().all(|w| *w <= Duration::from_secs(1)));
        assert!(waits[7] >= Duration::from_millis(500));
        backoff.reset();
        assert!(backoff.next_wait() <= Duration::from_millis(150));
    }
}
