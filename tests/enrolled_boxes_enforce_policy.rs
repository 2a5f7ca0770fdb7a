//! Four enrolled boxes (hub, clinic, commune, resort) made with the real CLI: each scope goes
//! exactly where the policy lets it, and the record shows it.
#![expect(
    clippy::unwrap_used,
    reason = "helpers outside #[test] functions panic on failure by design"
)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Culao, Network, doc_id, eventually, free_udp_port, holds};

const WAIT: Duration = Duration::from_secs(60);

/// Keys of the box's replica tree that name `scope` (entries, heads, documents).
fn stored_keys_of_scope(data_dir: &Path, scope: &str) -> usize {
    let db = sled::open(data_dir.join("store")).unwrap();
    let tree = db.open_tree("replica").unwrap();
    tree.iter()
        .keys()
        .map(Result::unwrap)
        .filter(|key| key.windows(scope.len()).any(|w| w == scope.as_bytes()))
        .count()
}

fn sent_rows(audit: &serde_json::Value) -> Vec<(String, String, u64)> {
    audit["sent"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row["peer"].as_str().unwrap().to_owned(),
                row["scope"].as_str().unwrap().to_owned(),
                row["entries"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn health_reaches_the_hub_and_never_the_resort() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let network = Network::init(root, "phu-quy");
    let hub_port = free_udp_port();
    let (hub_bundle, hub_id) = network.provision(root, "hub", "phan-thiet", Some(hub_port), &[]);
    let hub_peer = format!("{hub_id}@127.0.0.1:{hub_port}");
    let peers = [hub_peer];
    let (clinic_bundle, _) = network.provision(root, "clinic", "health-centre", None, &peers);
    let (commune_bundle, _) = network.provision(root, "commune", "tam-thanh", None, &peers);
    let (resort_bundle, resort_id) = network.provision(root, "resort", "resort-1", None, &peers);

    let hub = Culao::start_with(
        &root.join("hub"),
        hub_port,
        &[],
        &[
            "--bundle".to_owned(),
            hub_bundle.display().to_string(),
            "--https".to_owned(),
            "127.0.0.1:0".to_owned(),
        ],
    );
    let clinic = Culao::start_enrolled(&root.join("clinic"), 0, &clinic_bundle);
    let commune = Culao::start_enrolled(&root.join("commune"), 0, &commune_bundle);
    let mut resort = Culao::start_enrolled(&root.join("resort"), 0, &resort_bundle);
    assert_eq!(hub.node_id, hub_id);
    assert_eq!(resort.status()["trust"]["role"], "resort");

    // The clinic writes health records and cards are written at the commune.
    for n in 0..20 {
        let (code, body) = clinic.put("health", &doc_id(n), r#"{"allergy":"penicillin"}"#);
        assert_eq!(code, 200, "{body}");
        let (code, body) = commune.put("cards", &doc_id(n), r#"{"holder":"Nguyễn Văn An"}"#);
        assert_eq!(code, 200, "{body}");
    }
    // Tickets sold at the resort and the commune.
    assert_eq!(resort.put("tickets", &doc_id(100), r#"{"seat":1}"#).0, 200);
    assert_eq!(commune.put("tickets", &doc_id(101), r#"{"seat":2}"#).0, 200);

    // A resort may not write health; the refusal names the scope.
    let (code, body) = resort.put("health", &doc_id(50), r#"{"allergy":"none"}"#);
    assert_eq!(code, 403, "{body}");
    assert!(
        body.contains("scope_not_writable") && body.contains("health"),
        "{body}"
    );

    eventually(WAIT, "health records at the hub", || {
        (0..20).all(|n| holds(&hub, "health", n))
    });
    eventually(WAIT, "cards at every box", || {
        [&hub, &clinic, &commune, &resort]
            .iter()
            .all(|b| (0..20).all(|n| holds(b, "cards", n)))
    });
    eventually(WAIT, "tickets at hub, commune and resort", || {
        [&hub, &commune, &resort]
            .iter()
            .all(|b| holds(b, "tickets", 100) && holds(b, "tickets", 101))
    });
    // Let any stray round finish before looking at what the resort holds.
    std::thread::sleep(Duration::from_secs(2));

    // The resort neither serves nor holds health: its API refuses, its store has no key.
    let (code, body) = resort.get("health", &doc_id(0));
    assert_eq!(code, 403, "{body}");
    // The audit of every box: health went to the hub, and to no resort.
    let clinic_sent = sent_rows(&clinic.audit());
    assert!(
        clinic_sent
            .iter()
            .any(|(peer, scope, n)| *peer == hub_id && scope == "health" && *n >= 20),
        "the clinic's audit shows health sent to the hub: {clinic_sent:?}"
    );
    for boxx in [&hub, &clinic, &commune] {
        let rows = sent_rows(&boxx.audit());
        assert!(
            !rows
                .iter()
                .any(|(peer, scope, _)| *peer == resort_id && scope == "health"),
            "no health entry ever sent to the resort: {rows:?}"
        );
    }
    resort.stop();

    // The hub's API over HTTPS, with the certificate from its bundle: a client trusting the
    // network's CA gets in; one trusting another network's CA does not.
    let https = hub.https.expect("the hub serves HTTPS");
    let ca = std::fs::read_to_string(hub_bundle.join("tls/ca.pem")).unwrap();
    let (code, body) = common::https_get(https, &ca, &format!("/v1/docs/health/{}", doc_id(0)))
        .expect("TLS with the network's CA");
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("penicillin"), "{body}");
    let elsewhere = Network::init(root, "elsewhere");
    let other_ca = std::fs::read_to_string(elsewhere.dir.join("tls-ca.pem")).unwrap();
    assert!(common::https_get(https, &other_ca, "/healthz").is_err());
    assert_eq!(stored_keys_of_scope(&resort.dir, "health"), 0);
    assert!(stored_keys_of_scope(&resort.dir, "cards") > 0);
}
