//! Catching up 10,000 entries through an MQTT broker against the same catch-up over iroh.
//!
//! `cargo bench -p culao-node --bench mqtt_vs_iroh` (a plain `main`; needs `mosquitto` on
//! the path; `CULAO_BENCH_ENTRIES` changes the count). Box A holds the entries; box B1
//! catches up over iroh, box B2 through a mosquitto broker the benchmark starts. B2 talks to
//! the broker through a counting TCP proxy, so the MQTT figure is every byte of B2's
//! connection (TCP payload: MQTT headers, chunk headers, acks, pings). The iroh figure is the
//! sync messages' bytes as the session counts them (QUIC's own overhead is not counted).

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    reason = "a benchmark prints its figures and fails loudly"
)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::str::FromStr as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crdt_model::{DocId, DocKey, NodeId, Scope};
use culao_node::config::{Config, MqttPeerConfig, PeerConfig};
use culao_node::core::CoreHandle;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

fn key(n: u64) -> DocKey {
    DocKey {
        scope: Scope::new("tickets").unwrap(),
        doc: DocId::from_str(&format!("{n:032x}")).unwrap(),
    }
}

fn config(dir: &Path) -> Config {
    let mut config = Config {
        data_dir: dir.to_owned(),
        ..Config::default()
    };
    config.http.listen = "127.0.0.1:0".parse().unwrap();
    config.sync.listen = "127.0.0.1:0".parse().unwrap();
    config
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn mosquitto(dir: &Path, port: u16) -> Child {
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
    )
    .unwrap();
    let child = Command::new("mosquitto")
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("mosquitto on the path");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

/// Forwards connections on a new port to `target`, counting the bytes both ways.
async fn counting_proxy(target: u16, counted: Arc<AtomicU64>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = TcpStream::connect(("127.0.0.1", target)).await else {
                continue;
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let (client_read, client_write) = client.into_split();
            let (server_read, server_write) = server.into_split();
            tokio::spawn(pipe(client_read, server_write, counted.clone()));
            tokio::spawn(pipe(server_read, client_write, counted.clone()));
        }
    });
    port
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    counted: Arc<AtomicU64>,
) {
    let mut buffer = vec![0u8; 64 << 10];
    while let Ok(n) = from.read(&mut buffer).await {
        if n == 0 || to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
        counted.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// Waits until `core` holds the last entry and is in sync with `peer`; returns the elapsed
/// time and the bytes the core received from its peers.
async fn caught_up(
    core: &CoreHandle,
    peer: NodeId,
    last: u64,
    started: Instant,
) -> (Duration, u64) {
    loop {
        if core.get(key(last)).await.ok().flatten().is_some() {
            let status = core.status().await.unwrap();
            let synced = status
                .peers
                .iter()
                .any(|p| p.node_id == peer.to_string() && p.connected && p.entries_to_receive == 0);
            if synced {
                return (started.elapsed(), status.bytes_in);
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn main() {
    let entries: u64 = std::env::var("CULAO_BENCH_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async move {
        let root = tempfile::tempdir().unwrap();
        let broker_port = free_port();
        let mut broker = mosquitto(root.path(), broker_port);
        let broker_url = format!("mqtt://127.0.0.1:{broker_port}");

        // A holds the entries and answers MQTT sessions on the broker directly.
        let mut a_config = config(&root.path().join("a"));
        a_config.mqtt.broker = Some(broker_url);
        let a = culao_node::start_with(a_config, None).await.unwrap();
        let mut writers = tokio::task::JoinSet::new();
        for lane in 0..64u64 {
            let core = a.core().clone();
            writers.spawn(async move {
                for n in (lane..entries).step_by(64) {
                    let mut fields = serde_json::Map::new();
                    fields.insert("seat".into(), n.into());
                    fields.insert("route".into(), "Phan Thiết–Phú Quý".into());
                    core.put(key(n), fields).await.unwrap();
                }
            });
        }
        while writers.join_next().await.is_some() {}
        println!("mqtt_vs_iroh: A holds {entries} entries");

        let mut b1_config = config(&root.path().join("b1"));
        b1_config.sync.peers.push(PeerConfig {
            id: a.node_id,
            addrs: a.sync_addrs.clone(),
        });
        let started = Instant::now();
        let b1 = culao_node::start_with(b1_config, None).await.unwrap();
        let (iroh_time, iroh_bytes) = caught_up(b1.core(), a.node_id, entries - 1, started).await;
        b1.shutdown().await;

        let counted = Arc::new(AtomicU64::new(0));
        let proxy_port = counting_proxy(broker_port, counted.clone()).await;
        let mut b2_config = config(&root.path().join("b2"));
        b2_config.mqtt.broker = Some(format!("mqtt://127.0.0.1:{proxy_port}"));
        b2_config.mqtt.peers.push(MqttPeerConfig { id: a.node_id });
        let started = Instant::now();
        let b2 = culao_node::start_with(b2_config, None).await.unwrap();
        let (mqtt_time, mqtt_sync_bytes) =
            caught_up(b2.core(), a.node_id, entries - 1, started).await;
        let mqtt_wire = counted.load(Ordering::Relaxed);
        b2.shutdown().await;
        a.shutdown().await;
        let _ = broker.kill();
        let _ = broker.wait();

        let rate = |time: Duration| entries as f64 / time.as_secs_f64();
        println!(
            "mqtt_vs_iroh: iroh  {:>8.0} entries/s ({:.2} s), {iroh_bytes} sync bytes",
            rate(iroh_time),
            iroh_time.as_secs_f64()
        );
        println!(
            "mqtt_vs_iroh: mqtt  {:>8.0} entries/s ({:.2} s), {mqtt_sync_bytes} sync bytes, \
             {mqtt_wire} bytes on B2's broker connection",
            rate(mqtt_time),
            mqtt_time.as_secs_f64()
        );
        println!(
            "mqtt_vs_iroh: ratio mqtt/iroh: time {:.2}, wire bytes {:.2} (MQTT TCP payload over iroh sync messages)",
            mqtt_time.as_secs_f64() / iroh_time.as_secs_f64(),
            mqtt_wire as f64 / iroh_bytes.max(1) as f64
        );
    });
}
