//! Site devices on a box's embedded broker, driven by Debian's mosquitto clients: a device
//! provisioned with `culao provision device` connects over TLS with its certificate and
//! password and uses its own topics; it is refused without them, on the plain listener, on
//! another device's topics, on the boxes' sync tree, from another network, and once its
//! line is deleted from the users file.

#![expect(
    clippy::expect_used,
    reason = "a helper that cannot run mosquitto must fail the test"
)]

mod common;

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Culao, Network, free_tcp_port, with_bundle};

/// What a mosquitto client needs to act as one device.
struct Device {
    dir: PathBuf,
    name: &'static str,
}

impl Device {
    fn password(&self) -> String {
        std::fs::read_to_string(self.dir.join("password"))
            .expect("the device's password file")
            .trim()
            .to_owned()
    }

    /// TLS with the device's certificate, logged in with its password.
    fn credentials(&self) -> Vec<String> {
        let mut args = self.tls_without_certificate();
        args.extend(
            [
                "--cert",
                &self.dir.join("device.pem").display().to_string(),
                "--key",
                &self.dir.join("device.key").display().to_string(),
            ]
            .map(str::to_owned),
        );
        args
    }

    /// TLS trusting the network CA and the password, but no client certificate.
    fn tls_without_certificate(&self) -> Vec<String> {
        [
            "--cafile",
            &self.dir.join("ca.pem").display().to_string(),
            "-u",
            self.name,
            "-P",
            &self.password(),
        ]
        .map(str::to_owned)
        .to_vec()
    }
}

// Clients connect by name: OpenSSL sends an IP address as the TLS server name, which the
// broker's rustls 0.22 refuses (docs/mqtt.md).

/// `mosquitto_pub` of one QoS 1 message; true if the broker acknowledged it.
fn publish(port: u16, topic: &str, message: &str, login: &[String]) -> bool {
    Command::new("mosquitto_pub")
        .args(["-h", "localhost", "-p", &port.to_string(), "-q", "1"])
        .args(["-t", topic, "-m", message])
        .args(login)
        .stderr(Stdio::null())
        .status()
        .expect("mosquitto_pub runs")
        .success()
}

/// `mosquitto_sub` for the first message on `filter`, giving up after `wait`.
fn subscribe(port: u16, filter: &str, login: &[String], wait: Duration) -> Child {
    Command::new("mosquitto_sub")
        .args(["-h", "localhost", "-p", &port.to_string(), "-q", "1"])
        .args(["-t", filter, "-C", "1", "-W", &wait.as_secs().to_string()])
        .args(login)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("mosquitto_sub runs")
}

/// What a subscriber printed before it ended.
fn received(mut child: Child) -> String {
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        stdout
            .read_to_string(&mut out)
            .expect("the subscriber's output");
    }
    let _ = child.wait();
    out.trim().to_owned()
}

fn start_box(root: &Path, network: &Network, users: &Path, tcp: u16, tls: u16) -> Culao {
    let (bundle, _) = network.provision(root, "port", "port", None, &[]);
    let dir = root.join("port-box");
    std::fs::create_dir_all(&dir).expect("box dir");
    let config = dir.join("culao.toml");
    std::fs::write(
        &config,
        format!(
            "[mqtt.server]\nenabled = true\nlisten = \"127.0.0.1:{tcp}\"\n\
             tls_listen = \"127.0.0.1:{tls}\"\nusers_file = {:?}\n",
            users.display().to_string()
        ),
    )
    .expect("config file");
    let args = vec!["--config".to_owned(), config.display().to_string()];
    Culao::start_with(&dir, 0, &[], &with_bundle(args, &bundle))
}

#[test]
fn a_device_uses_its_own_topics_and_no_others() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let network = Network::init(root, "phu-quy");
    let users = root.join("mqtt-users");
    let gate = Device {
        dir: network.provision_device(root, "gate1", "gate", "port", &users),
        name: "gate1",
    };
    let reader = Device {
        dir: network.provision_device(root, "reader2", "reader", "port", &users),
        name: "reader2",
    };
    let (tcp, tls) = (free_tcp_port(), free_tcp_port());
    let port_box = start_box(root, &network, &users, tcp, tls);
    let network_id = port_box.status()["trust"]["network"]
        .as_str()
        .unwrap()
        .to_owned();
    let wait = Duration::from_secs(10);

    // Its own topics: what it publishes reaches a subscriber on them.
    let own = subscribe(tls, "/tenants/gate1/#", &gate.credentials(), wait);
    std::thread::sleep(Duration::from_millis(700));
    let scan = r#"{"scan_id":"7d1c","at":"2026-12-04T09:00:00Z","ticket":"AAEC","lane":2}"#;
    assert!(
        publish(tls, "/tenants/gate1/up/scan", scan, &gate.credentials()),
        "a device publishes on its own topics"
    );
    assert_eq!(received(own), scan);

    // Another device's topics and the boxes' sync tree: refused, and nothing arrives there.
    let readers_inbox = subscribe(tls, "/tenants/reader2/#", &reader.credentials(), wait);
    let spy = subscribe(tls, "/tenants/reader2/#", &gate.credentials(), wait);
    std::thread::sleep(Duration::from_millis(700));
    let forged = r#"{"tap_id":"x","result":"ok","balance_vnd":999999999}"#;
    assert!(
        !publish(
            tls,
            "/tenants/reader2/down/result",
            forged,
            &gate.credentials()
        ),
        "a device may not publish on another device's topics"
    );
    let sync_topic = format!(
        "/tenants/{network_id}/sync/{}/{}",
        "ab".repeat(32),
        "cd".repeat(32)
    );
    assert!(
        !publish(tls, &sync_topic, "junk", &gate.credentials()),
        "a device may not publish on the boxes' sync tree"
    );
    let real = r#"{"tap_id":"t1","at":"2026-12-04T09:01:00Z","card":"c0ffee","amount_vnd":25000,"purpose":"pay"}"#;
    assert!(publish(
        tls,
        "/tenants/reader2/up/tap",
        real,
        &reader.credentials()
    ));
    assert_eq!(
        received(readers_inbox),
        real,
        "the reader's topics carry its own message, never the forged one"
    );
    assert_eq!(
        received(spy),
        "",
        "a device may not subscribe to another device's topics"
    );

    // Without its certificate, without its password, or on the plain listener: refused.
    let login = gate.credentials();
    assert!(!publish(
        tls,
        "/tenants/gate1/up/scan",
        "x",
        &gate.tls_without_certificate()
    ));
    let no_password: Vec<String> = login
        .iter()
        .filter(|a| *a != "-P" && **a != gate.password())
        .cloned()
        .collect();
    assert!(!publish(tls, "/tenants/gate1/up/scan", "x", &no_password));
    let mut wrong = login.clone();
    let at = wrong.iter().position(|a| a == "-P").unwrap() + 1;
    wrong[at] = reader.password();
    assert!(
        !publish(tls, "/tenants/gate1/up/scan", "x", &wrong),
        "another device's password"
    );
    let plain = ["-u", "gate1", "-P", &gate.password()].map(str::to_owned);
    assert!(
        !publish(tcp, "/tenants/gate1/up/scan", "x", &plain),
        "devices are refused on the plain listener, where nothing would confine them"
    );

    // A device of another network: its certificate does not chain to this network's CA.
    let other_root = root.join("other");
    std::fs::create_dir_all(&other_root).unwrap();
    let other = Network::init(&other_root, "elsewhere");
    let stranger = Device {
        dir: other.provision_device(&other_root, "gate1", "gate", "port", &other_root.join("u")),
        name: "gate1",
    };
    let mut foreign = stranger.credentials();
    let at = foreign.iter().position(|a| a == "--cafile").unwrap() + 1;
    foreign[at] = gate.dir.join("ca.pem").display().to_string();
    assert!(!publish(tls, "/tenants/gate1/up/scan", "x", &foreign));

    // Deleting its line from the users file shuts the device out, without a restart.
    let text = std::fs::read_to_string(&users).unwrap();
    let kept: String = text
        .lines()
        .filter(|l| !l.starts_with("gate1 "))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&users, kept).unwrap();
    assert!(!publish(
        tls,
        "/tenants/gate1/up/scan",
        "x",
        &gate.credentials()
    ));
    assert!(publish(
        tls,
        "/tenants/reader2/up/tap",
        real,
        &reader.credentials()
    ));
}

/// `culao provision device` with `args`; returns its exit status and stderr.
fn provision_device(network: &Network, args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_culao"))
        .args(["provision", "device", "--network"])
        .arg(&network.dir)
        .arg("--passphrase-file")
        .arg(&network.passphrase_file)
        .args(args)
        .output()
        .expect("culao runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn bad_device_requests_are_refused_naming_what_was_wrong() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let network = Network::init(root, "phu-quy");
    let users = root.join("users");
    let out = |name: &str| root.join(name).display().to_string();
    let users_arg = users.display().to_string();
    let base = |name: &'static str, class: &'static str, dir: &str| -> Vec<String> {
        [
            "--name", name, "--class", class, "--site", "port", "--out", dir,
        ]
        .map(str::to_owned)
        .to_vec()
    };

    for (name, class, expected) in [
        ("Gate-1", "gate", "device name \"Gate-1\""),
        ("gate1", "camera", "device class \"camera\""),
    ] {
        let args = base(name, class, &out("bad"));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, stderr) = provision_device(&network, &refs);
        assert!(!ok && stderr.contains(expected), "{stderr}");
    }

    let mut args = base("gate1", "gate", &out("first"));
    args.extend(["--users-file".to_owned(), users_arg.clone()]);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    assert!(provision_device(&network, &refs).0);
    let mut again = base("gate1", "reader", &out("second"));
    again.extend(["--users-file".to_owned(), users_arg]);
    let refs: Vec<&str> = again.iter().map(String::as_str).collect();
    let (ok, stderr) = provision_device(&network, &refs);
    assert!(
        !ok && stderr.contains("already issued"),
        "a name is issued once: {stderr}"
    );
    let lines = std::fs::read_to_string(&users).unwrap();
    assert_eq!(lines.lines().count(), 1, "{lines}");
    assert!(
        !root.join("second").exists(),
        "nothing written for a refused device"
    );
}
