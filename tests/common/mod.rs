//! Real `culao` processes for end-to-end tests, and a minimal HTTP client to talk to them.

#![allow(
    dead_code,
    reason = "each test file uses a different part of the harness"
)]
#![expect(
    clippy::expect_used,
    reason = "a harness that cannot start a box must fail the test"
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_culao");

/// One running box.
pub struct Culao {
    child: Child,
    pub dir: PathBuf,
    pub node_id: String,
    pub http: SocketAddr,
    pub sync: SocketAddr,
    /// Set when the box serves HTTPS (`--https`).
    pub https: Option<SocketAddr>,
    peers: Vec<String>,
    extra: Vec<String>,
}

impl Culao {
    /// Starts a box in `dir` with the given peers; `sync` port 0 picks a free one.
    pub fn start(dir: &Path, sync_port: u16, peers: &[String]) -> Self {
        Self::start_with(dir, sync_port, peers, &[])
    }

    /// Starts an enrolled box from `bundle`, data in `dir`, sync on `sync_port`.
    pub fn start_enrolled(dir: &Path, sync_port: u16, bundle: &Path) -> Self {
        let bundle = bundle.display().to_string();
        Self::start_with(dir, sync_port, &[], &["--bundle".to_owned(), bundle])
    }

    /// Starts a box with `extra` arguments to `culao up`.
    pub fn start_with(dir: &Path, sync_port: u16, peers: &[String], extra: &[String]) -> Self {
        let mut command = Command::new(BIN);
        command
            .arg("up")
            .arg("--data-dir")
            .arg(dir)
            .args([
                "--http",
                "127.0.0.1:0",
                "--sync",
                &format!("127.0.0.1:{sync_port}"),
            ])
            .env("CULAO_LOG", "warn,culao_node=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file(dir)));
        for peer in peers {
            command.args(["--peer", peer]);
        }
        command.args(extra);
        let mut child = command.spawn().expect("culao starts");
        let stdout = child.stdout.take().expect("stdout is piped");

        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let mut seen = Vec::new();
            for line in lines.by_ref().map_while(Result::ok) {
                let done = line.starts_with("peer");
                seen.push(line);
                if done {
                    let _ = tx.send(seen);
                    break;
                }
            }
            // Keep draining so the box never blocks on a full pipe.
            for _ in lines {}
        });
        let lines = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| {
                panic!(
                    "box in {} did not start; log:\n{}",
                    dir.display(),
                    read_log(dir)
                )
            });
        let field = |name: &str| {
            lines
                .iter()
                .find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_owned()))
                .unwrap_or_else(|| panic!("no {name} line in {lines:?}"))
        };
        let http = field("http")
            .trim_start_matches("http://")
            .parse()
            .expect("http address");
        let sync = field("sync").parse().expect("sync address");
        let https = lines.iter().find_map(|l| {
            l.strip_prefix("https")
                .and_then(|v| v.trim().trim_start_matches("https://").parse().ok())
        });
        Self {
            child,
            dir: dir.to_owned(),
            node_id: field("node id"),
            http,
            sync,
            https,
            peers: peers.to_vec(),
            extra: extra.to_vec(),
        }
    }

    /// The box's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `NODE_ID@HOST:PORT`, for another box's `--peer`.
    pub fn peer_arg(&self) -> String {
        format!("{}@{}", self.node_id, self.sync)
    }

    pub fn kill(&mut self) {
        // SAFETY-free: libc::kill on a child we own.
        unsafe_kill(self.child.id(), libc::SIGKILL);
        let _ = self.child.wait();
    }

    pub fn stop(&mut self) {
        unsafe_kill(self.child.id(), libc::SIGTERM);
        let _ = self.child.wait();
    }

    /// Starts the same box again: same data, same sync port, same peers.
    pub fn restart(&mut self) {
        let again = Culao::start_with(
            &self.dir.clone(),
            self.sync.port(),
            &self.peers,
            &self.extra,
        );
        *self = again;
    }

    pub fn put(&self, scope: &str, id: &str, body: &str) -> (u16, String) {
        http(self.http, "PUT", &format!("/v1/docs/{scope}/{id}"), body)
    }

    pub fn get(&self, scope: &str, id: &str) -> (u16, String) {
        http(self.http, "GET", &format!("/v1/docs/{scope}/{id}"), "")
    }

    pub fn audit(&self) -> serde_json::Value {
        let (code, body) = http(self.http, "GET", "/v1/audit", "");
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).expect("audit is JSON")
    }

    /// The status entry of peer `node_id`, if this box has heard of it.
    pub fn peer_status(&self, node_id: &str) -> Option<serde_json::Value> {
        let status = self.status();
        status["peers"]
            .as_array()?
            .iter()
            .find(|p| p["node_id"] == node_id)
            .cloned()
    }

    pub fn status(&self) -> serde_json::Value {
        let (code, body) = http(self.http, "GET", "/v1/status", "");
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).expect("status is JSON")
    }
}

impl Drop for Culao {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn unsafe_kill(pid: u32, signal: i32) {
    let _ = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .status();
}

fn log_file(dir: &Path) -> std::fs::File {
    std::fs::create_dir_all(dir).expect("data dir");
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("box.log"))
        .expect("log")
}

pub fn read_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("box.log")).unwrap_or_default()
}

/// One HTTP/1.1 request; returns the status code and body. Connection errors give code 0.
pub fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(5)) else {
        return (0, String::new());
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    if stream.write_all(request.as_bytes()).is_err() {
        return (0, String::new());
    }
    let mut response = String::new();
    if stream.read_to_string(&mut response).is_err() {
        return (0, String::new());
    }
    status_and_body(&response)
}

/// The status code and body of a raw HTTP/1.1 response; code 0 if it has none.
fn status_and_body(response: &str) -> (u16, String) {
    let code = response
        .get(9..12)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (code, body)
}

/// Polls `check` until it holds or `timeout` passes.
pub fn eventually(timeout: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}

/// A document id made from a number.
pub fn doc_id(n: u64) -> String {
    format!("{n:032x}")
}

/// A network made with the real CLI (`culao network init`), in a directory of the test's.
pub struct Network {
    pub dir: PathBuf,
    pub passphrase_file: PathBuf,
}

impl Network {
    pub fn init(root: &Path, name: &str) -> Self {
        let passphrase_file = root.join(format!("{name}.passphrase"));
        std::fs::write(&passphrase_file, "a long test passphrase\n").expect("passphrase file");
        let dir = root.join(format!("{name}-network"));
        run_cli(&[
            "network",
            "init",
            "--dir",
            &dir.display().to_string(),
            "--name",
            name,
            "--passphrase-file",
            &passphrase_file.display().to_string(),
        ]);
        Self {
            dir,
            passphrase_file,
        }
    }

    /// `culao provision node`; returns the bundle's directory and the node id it printed.
    pub fn provision(
        &self,
        root: &Path,
        role: &str,
        site: &str,
        listen: Option<u16>,
        peers: &[String],
    ) -> (PathBuf, String) {
        let out = root.join(format!("{site}-bundle"));
        let mut args = vec![
            "provision".to_owned(),
            "node".to_owned(),
            "--network".to_owned(),
            self.dir.display().to_string(),
            "--role".to_owned(),
            role.to_owned(),
            "--site".to_owned(),
            site.to_owned(),
            "--out".to_owned(),
            out.display().to_string(),
            "--passphrase-file".to_owned(),
            self.passphrase_file.display().to_string(),
        ];
        if let Some(port) = listen {
            args.push("--listen".to_owned());
            args.push(format!("127.0.0.1:{port}"));
        }
        for peer in peers {
            args.push("--peer".to_owned());
            args.push(peer.clone());
        }
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let stdout = run_cli(&refs);
        let node_id = stdout
            .lines()
            .find_map(|l| l.strip_prefix("node id").map(|v| v.trim().to_owned()))
            .expect("provision prints the node id");
        (out, node_id)
    }

    /// `culao provision device`, appending its login to `users_file`; returns the directory
    /// of its credentials (`ca.pem`, `device.pem`, `device.key`, `password`).
    pub fn provision_device(
        &self,
        root: &Path,
        name: &str,
        class: &str,
        site: &str,
        users_file: &Path,
    ) -> PathBuf {
        let out = root.join(format!("{name}-device"));
        let stdout = run_cli(&[
            "provision",
            "device",
            "--network",
            &self.dir.display().to_string(),
            "--name",
            name,
            "--class",
            class,
            "--site",
            site,
            "--out",
            &out.display().to_string(),
            "--users-file",
            &users_file.display().to_string(),
            "--passphrase-file",
            &self.passphrase_file.display().to_string(),
        ]);
        assert!(
            stdout.contains(&format!("/tenants/{name}/#")),
            "provision device prints the device's topics: {stdout}"
        );
        out
    }

    /// `culao provision revoke`; returns the armored revocation list it printed.
    pub fn revoke(&self, node_id: &str) -> String {
        run_cli(&[
            "provision",
            "revoke",
            "--network",
            &self.dir.display().to_string(),
            node_id,
            "--passphrase-file",
            &self.passphrase_file.display().to_string(),
        ])
    }
}

/// Runs the CLI to completion; panics with its stderr if it fails. Returns stdout.
pub fn run_cli(args: &[&str]) -> String {
    let output = Command::new(BIN).args(args).output().expect("culao runs");
    assert!(
        output.status.success(),
        "culao {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// A UDP port free on loopback right now (for addresses that go into bundles).
pub fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// One HTTPS GET with rustls (ring), trusting only `ca_pem`, for server name `localhost`.
/// Returns the status code and body, or the TLS error.
pub fn https_get(addr: SocketAddr, ca_pem: &str, path: &str) -> Result<(u16, String), String> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, ServerName};
    use std::sync::Arc;

    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots
            .add(cert.map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from("localhost").map_err(|e| e.to_string())?;
    let connection =
        rustls::ClientConnection::new(Arc::new(config), name).map_err(|e| e.to_string())?;
    let tcp =
        TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let mut tls = rustls::StreamOwned::new(connection, tcp);
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    tls.write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    match tls.read_to_end(&mut response) {
        Ok(_) => {}
        // A server may close without close_notify after `Connection: close`.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !response.is_empty() => {}
        Err(e) => return Err(e.to_string()),
    }
    Ok(status_and_body(&String::from_utf8_lossy(&response)))
}

/// A TCP port free on loopback right now.
pub fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A mosquitto broker run by the test on a port of its own (Debian's `mosquitto`; `.ci/run`
/// installs it).
pub struct Mosquitto {
    child: Option<Child>,
    pub port: u16,
    config: PathBuf,
}

impl Mosquitto {
    /// Starts mosquitto on a free loopback port, anonymous clients allowed, no persistence.
    pub fn start(dir: &Path) -> Self {
        std::fs::create_dir_all(dir).expect("broker dir");
        let port = free_tcp_port();
        let config = dir.join("mosquitto.conf");
        std::fs::write(
            &config,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n\
                 log_dest stderr\nlog_type error\nlog_type warning\n"
            ),
        )
        .expect("broker config");
        let mut broker = Self {
            child: None,
            port,
            config,
        };
        broker.restart();
        broker
    }

    /// `mqtt://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the broker again on the same port; returns once it accepts connections.
    pub fn restart(&mut self) {
        self.kill();
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto runs (apt-get install mosquitto; .ci/run does)");
        self.child = Some(child);
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        eventually(Duration::from_secs(10), "mosquitto listening", || {
            TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
        });
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Creates the identity in `dir` (`culao id`) and returns the node id.
pub fn node_id_of(dir: &Path) -> String {
    run_cli(&["id", "--data-dir", &dir.display().to_string()])
        .trim()
        .to_owned()
}

/// Writes a config file with an `[mqtt]` section naming `broker` and `peers`, plus `extra`
/// TOML lines inside that section; returns `--config FILE` for `Culao::start_with`.
pub fn mqtt_config(dir: &Path, broker: &str, peers: &[&str], extra: &str) -> Vec<String> {
    std::fs::create_dir_all(dir).expect("data dir");
    let mut text =
        format!("[mqtt]\nbroker = \"{broker}\"\nping_ms = 1000\nidle_timeout_ms = 5000\n{extra}\n");
    for peer in peers {
        text.push_str(&format!("[[mqtt.peers]]\nid = \"{peer}\"\n"));
    }
    let path = dir.join("culao.toml");
    std::fs::write(&path, text).expect("config file");
    vec!["--config".to_owned(), path.display().to_string()]
}

/// Whether `boxx` serves the document numbered `n` in `scope`.
pub fn holds(boxx: &Culao, scope: &str, n: u64) -> bool {
    boxx.get(scope, &doc_id(n)).0 == 200
}

/// `culao up` arguments `config` followed by `--bundle DIR`.
pub fn with_bundle(config: Vec<String>, bundle: &Path) -> Vec<String> {
    let mut args = config;
    args.push("--bundle".to_owned());
    args.push(bundle.display().to_string());
    args
}
