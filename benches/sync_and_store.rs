//! Benchmarks of the replica core and the box, printing measured figures and ratios.
//!
//! `cargo bench --bench sync_and_store` (a plain `main`, no timing assertions). It measures:
//! 1. the cost of confirming that an in-sync pair is in sync (10 and 100,000 documents; and a
//!    pair that has heard of 50 origins writing in 10 scopes each);
//! 2. bytes on the wire per automerge change byte when catching up 1,000 changes spread over
//!    1,000 of 100,000 documents;
//! 3. durable local writes per second through the box's group commit, against raw sled
//!    inserts with the same durability;
//! 4. start-up time and idle resident memory of a `culao` process holding 100,000 documents.

#![expect(
    clippy::unwrap_used,
    clippy::print_stdout,
    reason = "a benchmark prints its figures and fails loudly"
)]

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crdt_model::json::set_fields;
use crdt_model::session::{Session, SessionConfig};
use crdt_model::store::Store;
use crdt_model::{DocId, DocKey, Identity, MemStore, Replica, Scope, Vector};
use culao_node::core::{self, CoreConfig};
use culao_node::store::SledStore;
use serde_json::{Map, Value, json};

const SCOPES: [&str; 10] = [
    "tickets", "cards", "bookings", "lodging", "health", "sports", "radio", "stats", "system",
    "misc",
];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn key(scope: &str, n: u64) -> DocKey {
    let mut bytes = [0u8; 16];
    bytes[8..].copy_from_slice(&n.to_be_bytes());
    DocKey {
        scope: Scope::new(scope).unwrap(),
        doc: DocId::from_bytes(bytes),
    }
}

fn fields(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => unreachable!("bench bodies are objects"),
    }
}

fn write<S: Store>(replica: &mut Replica<S>, key: &DocKey, body: Value) {
    let body = fields(body);
    replica
        .write(key, 1_764_000_000, |tx| set_fields(tx, &body))
        .unwrap();
}

/// Runs a session pair to quiet; returns (round trips, bytes both ways, messages both ways).
fn sync_pair<S: Store, T: Store>(a: &mut Replica<S>, b: &mut Replica<T>) -> (u64, u64, u64) {
    let config = SessionConfig::default();
    let mut sa = Session::new(b.node_id(), config.clone());
    let mut sb = Session::new(a.node_id(), config);
    let (hello_a, hello_b) = (sa.start(a), sb.start(b));
    let mut to_b: VecDeque<Vec<u8>> = sa.encode(vec![hello_a]).into();
    let mut to_a: VecDeque<Vec<u8>> = sb.encode(vec![hello_b]).into();
    let mut round_trips: u64 = 0;
    // Deliver in lockstep rounds: everything in flight each way, then the replies.
    while !to_a.is_empty() || !to_b.is_empty() {
        round_trips += 1;
        let (now_a, now_b) = (std::mem::take(&mut to_a), std::mem::take(&mut to_b));
        for frame in now_b {
            to_a.extend(sb.on_frame(b, &frame).unwrap());
        }
        for frame in now_a {
            to_b.extend(sa.on_frame(a, &frame).unwrap());
        }
        a.commit().unwrap();
        b.commit().unwrap();
    }
    let (x, y) = (sa.stats(), sb.stats());
    // The last "round" only delivered replies that produced nothing: count exchanges, not loops.
    let round_trips = round_trips.div_ceil(2);
    (
        round_trips,
        x.bytes_out + y.bytes_out,
        x.messages_out + y.messages_out,
    )
}

fn pair_holding(docs: u64) -> (Replica<MemStore>, Replica<MemStore>) {
    let mut a = Replica::open(Identity::from_secret_bytes([1; 32]), MemStore::new(), 64).unwrap();
    let mut b = Replica::open(Identity::from_secret_bytes([2; 32]), MemStore::new(), 64).unwrap();
    for n in 0..docs {
        write(
            &mut a,
            &key("tickets", n),
            json!({"seat": n, "class": "eco"}),
        );
        if n % 4096 == 0 {
            a.commit().unwrap();
        }
    }
    a.commit().unwrap();
    sync_pair(&mut a, &mut b);
    (a, b)
}

fn bench_in_sync() {
    println!(
        "## 1. Confirming an in-sync pair (target: 1 round trip, < 1 KiB, same for all sizes)"
    );
    for docs in [10u64, 100_000] {
        let started = Instant::now();
        let (mut a, mut b) = pair_holding(docs);
        let setup = started.elapsed();
        let (rt, bytes, messages) = sync_pair(&mut a, &mut b);
        println!(
            "in-sync pair, {docs:>6} documents: {rt} round trip, {messages} messages, {bytes} bytes \
             (setup {:.1} s)",
            setup.as_secs_f64()
        );
    }

    // 50 origins writing in 10 scopes each, everything relayed to both replicas.
    let mut a = Replica::open(Identity::from_secret_bytes([1; 32]), MemStore::new(), 64).unwrap();
    let mut b = Replica::open(Identity::from_secret_bytes([2; 32]), MemStore::new(), 64).unwrap();
    for origin in 0..50u8 {
        let mut writer = Replica::open(
            Identity::from_secret_bytes([origin + 10; 32]),
            MemStore::new(),
            16,
        )
        .unwrap();
        for (s, scope) in SCOPES.iter().enumerate() {
            write(
                &mut writer,
                &key(scope, u64::from(origin) * 100 + s as u64),
                json!({"x": 1}),
            );
        }
        sync_pair(&mut writer, &mut a);
        sync_pair(&mut writer, &mut b);
    }
    let (rt, bytes, messages) = sync_pair(&mut a, &mut b);
    println!(
        "in-sync pair, 50 origins x 10 scopes ({} feeds): {rt} round trip, {messages} messages, {bytes} bytes",
        a.heads().len()
    );
}

fn bench_catch_up() {
    println!(
        "\n## 2. Catching up 1,000 changes over 1,000 of 100,000 documents (target: <= 1.3x + 4 KiB)"
    );
    let (mut a, mut b) = pair_holding(100_000);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let before: Vector = a.heads().vector(|_| true);
    let mut touched = std::collections::BTreeSet::new();
    while touched.len() < 1000 {
        touched.insert(rng.next() % 100_000);
    }
    for n in &touched {
        write(
            &mut a,
            &key("tickets", *n),
            json!({"seat": n + 1, "checked_in": true}),
        );
    }
    a.commit().unwrap();
    let change_bytes: usize = a
        .runs_for(&before, |_| true, usize::MAX)
        .unwrap()
        .iter()
        .flat_map(|run| run.items.iter().map(|i| i.change.len()))
        .sum();
    let (rt, bytes, messages) = sync_pair(&mut a, &mut b);
    let ratio = bytes as f64 / change_bytes as f64;
    let excess = bytes as i64 - (change_bytes as f64 * 1.3) as i64;
    println!(
        "catch-up: {change_bytes} change bytes carried in {bytes} wire bytes ({messages} messages, \
         {rt} round trips): ratio {ratio:.3}; bytes over 1.3x: {excess}"
    );
}

fn populate(dir: &Path, docs: u64) -> Identity {
    let identity = culao_node::identity::load_or_create(dir).unwrap();
    let store = SledStore::open(&dir.join("store"), 32 << 20).unwrap();
    let mut replica = Replica::open(identity.clone(), store.clone(), 64).unwrap();
    for n in 0..docs {
        write(
            &mut replica,
            &key("tickets", n),
            json!({"seat": n, "class": "eco"}),
        );
        if n % 4096 == 0 {
            replica.commit().unwrap();
        }
    }
    replica.commit().unwrap();
    store.flush().unwrap();
    identity
}

fn bench_durable_writes(dir: &Path) {
    println!("\n## 3. Durable local writes, random documents among 100,000 (target: >= 5,000/s)");
    let started = Instant::now();
    let identity = populate(dir, 100_000);
    println!(
        "populated 100,000 documents in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let store = SledStore::open(&dir.join("store"), 32 << 20).unwrap();
    let replica = Replica::open(identity, store.clone(), 1024).unwrap();
    let config = CoreConfig {
        session: SessionConfig::default(),
        max_batch: 1024,
        configured_peers: Vec::new(),
        trust: None,
    };
    let (handle, thread) = core::spawn(replica, store, config).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let writes = 20_000u64;
    let clients = 64u64;
    let elapsed = runtime.block_on(async {
        let started = Instant::now();
        let mut tasks = Vec::new();
        for c in 0..clients {
            let handle = handle.clone();
            tasks.push(tokio::spawn(async move {
                let mut rng = Rng(c * 7919 + 1);
                for i in 0..writes / clients {
                    let n = rng.next() % 100_000;
                    let body = fields(json!({"seat": i, "gate": c}));
                    handle.put(key("tickets", n), body).await.unwrap();
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        started.elapsed()
    });
    drop(handle);
    thread.join().unwrap();
    let ours = writes as f64 / elapsed.as_secs_f64();
    println!(
        "box (group commit, {clients} concurrent clients): {writes} writes in {:.2} s = {ours:.0} writes/s",
        elapsed.as_secs_f64()
    );

    let raw = sled::Config::new().path(dir.join("raw")).open().unwrap();
    let mut rng = Rng(3);
    let value = vec![7u8; 200];
    let started = Instant::now();
    let serial = 2_000u64;
    for _ in 0..serial {
        raw.insert((rng.next() % 100_000).to_be_bytes(), value.clone())
            .unwrap();
        raw.flush().unwrap();
    }
    let raw_serial = serial as f64 / started.elapsed().as_secs_f64();
    let started = Instant::now();
    for _ in 0..writes / clients {
        let mut batch = sled::Batch::default();
        for _ in 0..clients {
            batch.insert(&(rng.next() % 100_000).to_be_bytes(), value.clone());
        }
        raw.apply_batch(batch).unwrap();
        raw.flush().unwrap();
    }
    let raw_grouped = writes as f64 / started.elapsed().as_secs_f64();
    println!(
        "raw sled, insert + flush each: {raw_serial:.0} writes/s; ratio box/raw = {:.2}",
        ours / raw_serial
    );
    println!(
        "raw sled, batches of {clients} + one flush: {raw_grouped:.0} writes/s; ratio box/raw = {:.2}",
        ours / raw_grouped
    );
}

fn http_get(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.get(9..12)?.parse().ok()
}

fn bench_box_process(dir: &Path) {
    println!(
        "\n## 4. A box holding 100,000 documents (targets: idle RSS < 150 MB, start-up < 2 s)"
    );
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_culao"))
        .args([
            "up",
            "--http",
            "127.0.0.1:0",
            "--sync",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut http = None;
    for line in stdout.lines().map_while(Result::ok) {
        if let Some(addr) = line.strip_prefix("http     http://") {
            http = Some(addr.parse::<SocketAddr>().unwrap());
            break;
        }
    }
    let http = http.unwrap();
    while http_get(http, "/healthz") != Some(200) {
        std::thread::sleep(Duration::from_millis(5));
    }
    let startup = started.elapsed();
    assert_eq!(
        http_get(http, "/v1/docs/tickets/00000000000000000000000000000063"),
        Some(200)
    );
    std::thread::sleep(Duration::from_secs(2));
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    let rss_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    println!(
        "start-up to a healthy /healthz: {:.0} ms",
        startup.as_secs_f64() * 1000.0
    );
    println!("idle resident memory: {:.1} MB", rss_kb as f64 / 1024.0);
    let _ = child.kill();
    let _ = child.wait();
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    bench_in_sync();
    bench_catch_up();
    bench_durable_writes(dir.path());
    bench_box_process(dir.path());
    std::io::stdout().flush().unwrap();
}
