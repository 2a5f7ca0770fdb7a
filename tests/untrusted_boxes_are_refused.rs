//! Boxes that may not sync are shut out: another network's, an open (development) one, one
//! revoked while connected; bundles that are expired, mismatched or damaged do not start.
#![expect(
    clippy::unwrap_used,
    reason = "helpers outside #[test] functions panic on failure by design"
)]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{BIN, Culao, Network, doc_id, eventually, free_udp_port};

const WAIT: Duration = Duration::from_secs(60);

fn last_error(hub: &Culao, node: &str) -> String {
    hub.peer_status(node)
        .and_then(|p| p["last_error"].as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[test]
fn boxes_of_another_network_or_none_are_refused() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let ours = Network::init(root, "phu-quy");
    let theirs = Network::init(root, "elsewhere");
    let hub_port = free_udp_port();
    let (hub_bundle, hub_id) = ours.provision(root, "hub", "phan-thiet", Some(hub_port), &[]);
    let hub_peer = format!("{hub_id}@127.0.0.1:{hub_port}");
    let (foreign_bundle, foreign_id) = theirs.provision(root, "commune", "stranger", None, &[]);

    let hub = Culao::start_enrolled(&root.join("hub"), hub_port, &hub_bundle);
    let foreign = Culao::start_with(
        &root.join("foreign"),
        0,
        std::slice::from_ref(&hub_peer),
        &["--bundle".to_owned(), foreign_bundle.display().to_string()],
    );
    let open = Culao::start(&root.join("open"), 0, std::slice::from_ref(&hub_peer));
    assert_eq!(foreign.put("cards", &doc_id(1), r#"{"x":1}"#).0, 200);
    assert_eq!(open.put("cards", &doc_id(2), r#"{"x":2}"#).0, 200);

    eventually(WAIT, "the hub to refuse the foreign box", || {
        last_error(&hub, &foreign_id).contains("network")
    });
    eventually(WAIT, "the hub to refuse the open box", || {
        last_error(&hub, &open.node_id).contains("no certificate")
    });
    assert_eq!(hub.get("cards", &doc_id(1)).0, 404);
    assert_eq!(hub.get("cards", &doc_id(2)).0, 404);
    for node in [&foreign_id, &open.node_id] {
        let peer = hub.peer_status(node).unwrap();
        assert_eq!(peer["connected"], false, "{peer}");
    }
}

#[test]
fn a_box_revoked_while_connected_is_cut_off_and_the_revocation_spreads() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let network = Network::init(root, "phu-quy");
    let hub_port = free_udp_port();
    let (hub_bundle, hub_id) = network.provision(root, "hub", "phan-thiet", Some(hub_port), &[]);
    let peers = [format!("{hub_id}@127.0.0.1:{hub_port}")];
    let (resort_bundle, resort_id) = network.provision(root, "resort", "resort-1", None, &peers);
    let (commune_bundle, _) = network.provision(root, "commune", "tam-thanh", None, &peers);

    let hub = Culao::start_enrolled(&root.join("hub"), hub_port, &hub_bundle);
    let resort = Culao::start_enrolled(&root.join("resort"), 0, &resort_bundle);
    let commune = Culao::start_enrolled(&root.join("commune"), 0, &commune_bundle);
    assert_eq!(resort.put("tickets", &doc_id(1), r#"{"seat":1}"#).0, 200);
    eventually(WAIT, "the resort's ticket at the commune", || {
        commune.get("tickets", &doc_id(1)).0 == 200
    });
    // Sessions restart once when a box learns a new certificate (the commune's joining):
    // wait for the resort's to be back.
    eventually(WAIT, "the resort connected before the revocation", || {
        hub.peer_status(&resort_id)
            .is_some_and(|p| p["connected"] == true)
    });

    // The operator revokes the resort and hands the list to the hub.
    let revocations = network.revoke(&resort_id);
    let (code, body) = common::http(hub.http, "POST", "/v1/revocations", &revocations);
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"newly_revoked\":1"), "{body}");
    let peer = hub.peer_status(&resort_id).unwrap();
    assert_eq!(peer["connected"], false, "cut off at once: {peer}");

    // The resort's later writes go nowhere; the revocation reaches the commune through the
    // hub, and the commune holds it after the hub's sessions restart.
    assert_eq!(resort.put("tickets", &doc_id(2), r#"{"seat":2}"#).0, 200);
    eventually(WAIT, "the revocation at the commune", || {
        commune.status()["trust"]["revoked_nodes"]
            .as_array()
            .is_some_and(|nodes| nodes.iter().any(|n| *n == resort_id.as_str()))
    });
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3) {
        assert_eq!(hub.get("tickets", &doc_id(2)).0, 404);
        assert_eq!(commune.get("tickets", &doc_id(2)).0, 404);
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(last_error(&hub, &resort_id).contains("revoked"));
    // The revoked box learns it from the hub's preamble and tells its operator.
    eventually(WAIT, "the resort's log to say it is revoked", || {
        common::read_log(&resort.dir).contains("this box has been revoked")
    });
    // What the resort wrote before its revocation stays.
    assert_eq!(hub.get("tickets", &doc_id(1)).0, 200);
}

/// Runs `culao up --bundle DIR` and returns its stderr once it has exited (it must).
fn up_fails(root: &Path, bundle: &Path) -> String {
    let output = Command::new(BIN)
        .args(["up", "--http", "127.0.0.1:0", "--sync", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(root.join("data"))
        .arg("--bundle")
        .arg(bundle)
        .output()
        .unwrap();
    assert!(!output.status.success(), "the box must not start");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn expired_mismatched_or_damaged_bundles_do_not_start() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let network = Network::init(root, "phu-quy");
    let (good, _) = network.provision(root, "commune", "tam-thanh", None, &[]);
    let (other, _) = network.provision(root, "commune", "long-hai", None, &[]);

    // Key files are private.
    use std::os::unix::fs::PermissionsExt as _;
    for file in ["identity.key", "tls/node.key"] {
        let mode = std::fs::metadata(good.join(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file}");
    }

    // An expired certificate: enrolled ten days ago for one day.
    let net = provisioning::NetworkDir::open(&network.dir).unwrap();
    let passphrase = provisioning::Passphrase::from_file(&network.passphrase_file).unwrap();
    let authority = net.unlock(&passphrase).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let request = provisioning::EnrollRequest {
        role: "resort".parse().unwrap(),
        site: "old-resort".parse().unwrap(),
        validity_days: 1,
        listen: Vec::new(),
        peers: Vec::new(),
        now_unix_s: now - 10 * 86_400,
    };
    let expired = root.join("expired-bundle");
    provisioning::enroll(&authority, &request)
        .unwrap()
        .write_to(&expired)
        .unwrap();
    let stderr = up_fails(&root.join("a"), &expired);
    assert!(stderr.contains("expired"), "{stderr}");

    // A certificate presented with another box's identity.
    let mismatched = root.join("mismatched");
    copy_dir(&good, &mismatched);
    std::fs::copy(other.join("identity.key"), mismatched.join("identity.key")).unwrap();
    let stderr = up_fails(&root.join("b"), &mismatched);
    assert!(
        stderr.contains("identity.key") || stderr.contains("node"),
        "{stderr}"
    );

    // A damaged certificate file is named.
    let damaged = root.join("damaged");
    copy_dir(&good, &damaged);
    std::fs::write(damaged.join("node.cert"), "not a certificate").unwrap();
    let stderr = up_fails(&root.join("c"), &damaged);
    assert!(stderr.contains("node.cert"), "{stderr}");

    // A wrong passphrase is told apart from a damaged network.
    let wrong = root.join("wrong.passphrase");
    std::fs::write(&wrong, "not the passphrase at all\n").unwrap();
    let output = Command::new(BIN)
        .args(["provision", "node", "--role", "clinic", "--site", "x"])
        .arg("--network")
        .arg(&network.dir)
        .arg("--out")
        .arg(root.join("never"))
        .arg("--passphrase-file")
        .arg(&wrong)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("passphrase"), "{stderr}");
    assert!(!root.join("never").exists());
}

fn copy_dir(from: &Path, to: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
            let mode = entry.metadata().unwrap().permissions().mode();
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode)).unwrap();
        }
    }
}
