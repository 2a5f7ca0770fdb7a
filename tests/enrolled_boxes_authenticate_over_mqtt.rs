//! Enrolled boxes authenticate each other over a broker with signed preambles, send only the
//! scopes the policy allows, and refuse a client posing as a peer without its key. A peer reachable over
//! both iroh and MQTT falls back to MQTT when iroh is lost, without losing progress.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "helpers outside #[test] functions panic on failure by design"
)]

mod common;

use std::time::Duration;

use common::{
    Culao, Mosquitto, Network, doc_id, eventually, holds, mqtt_config, node_id_of, with_bundle,
};

const WAIT: Duration = Duration::from_secs(60);

#[test]
fn enrolled_boxes_sync_over_a_broker_within_their_policy_and_refuse_a_forged_preamble() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let broker = Mosquitto::start(&root.join("broker"));
    let network = Network::init(root, "phu-quy");
    let (hub_bundle, hub_id) = network.provision(root, "hub", "phan-thiet", None, &[]);
    let (clinic_bundle, clinic_id) = network.provision(root, "clinic", "health-centre", None, &[]);
    let (resort_bundle, _) = network.provision(root, "resort", "resort-1", None, &[]);

    let hub_dir = root.join("hub");
    let hub = Culao::start_with(
        &hub_dir,
        0,
        &[],
        &with_bundle(mqtt_config(&hub_dir, &broker.url(), &[], ""), &hub_bundle),
    );
    let clinic_dir = root.join("clinic");
    let clinic = Culao::start_with(
        &clinic_dir,
        0,
        &[],
        &with_bundle(
            mqtt_config(&clinic_dir, &broker.url(), &[&hub_id], ""),
            &clinic_bundle,
        ),
    );
    let resort_dir = root.join("resort");
    let resort = Culao::start_with(
        &resort_dir,
        0,
        &[],
        &with_bundle(
            mqtt_config(&resort_dir, &broker.url(), &[&hub_id], ""),
            &resort_bundle,
        ),
    );

    assert_eq!(
        clinic.put("health", &doc_id(1), r#"{"visit":"fever"}"#).0,
        200
    );
    assert_eq!(
        clinic.put("radio", &doc_id(2), r#"{"alert":"storm"}"#).0,
        200
    );
    eventually(WAIT, "the clinic's records on the hub", || {
        holds(&hub, "health", 1) && holds(&hub, "radio", 2)
    });
    eventually(WAIT, "the alert on the resort", || {
        holds(&resort, "radio", 2)
    });
    let status = resort
        .peer_status(&hub_id)
        .expect("the resort knows the hub");
    assert_eq!(
        status["role"], "hub",
        "the hub's certificate was verified: {status}"
    );
    assert_ne!(
        resort.get("health", &doc_id(1)).0,
        200,
        "health never reaches a resort"
    );

    // A client that may publish on the broker poses as the clinic: it opens a session with
    // the hub, reads the hub's answer, and sends a preamble it could not sign.
    let network_id = hub.status()["trust"]["network"]
        .as_str()
        .unwrap()
        .to_owned();
    let topic = |to: &str, from: &str| format!("/tenants/{network_id}/sync/{to}/{from}");
    let mut answers = std::process::Command::new("mosquitto_sub")
        .args([
            "-p",
            &broker.port.to_string(),
            "-t",
            &topic(&clinic_id, &hub_id),
            "-F",
            "%x",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("mosquitto_sub runs");
    let lines = std::io::BufRead::lines(std::io::BufReader::new(answers.stdout.take().unwrap()));
    std::thread::sleep(Duration::from_millis(500));
    let nonce: u64 = 0x5eed_5eed_5eed_5eed;
    publish(
        &broker,
        &topic(&hub_id, &clinic_id),
        &chunk(1, nonce, 0, &[]),
    );
    let hub_nonce = lines
        .map_while(Result::ok)
        .filter_map(|line| from_hex(line.trim()))
        .find(|c| c.len() > 30 && c[5] == 2 && c[14..22] == nonce.to_be_bytes())
        .map(|c| u64::from_be_bytes(c[6..14].try_into().unwrap()))
        .expect("the hub answers an open with its signed preamble");
    let _ = answers.kill();
    let _ = answers.wait();
    let mut forged = vec![0u8; 64];
    forged.extend_from_slice(b"CLPA\x01not the clinic's preamble");
    publish(
        &broker,
        &topic(&hub_id, &clinic_id),
        &chunk(2, nonce, hub_nonce, &forged),
    );
    eventually(WAIT, "the forged preamble refused", || {
        common::read_log(&hub.dir).contains("refused at authentication")
    });
    assert!(
        !common::read_log(&hub.dir).contains("peer opened a new session"),
        "the clinic's admitted session was not ended by the forged open"
    );

    // The real clinic's session goes on.
    assert_eq!(
        clinic.put("radio", &doc_id(3), r#"{"alert":"clear"}"#).0,
        200
    );
    eventually(WAIT, "the clinic's next write on the resort", || {
        holds(&resort, "radio", 3)
    });
}

/// A chunk (`docs/mqtt.md`): kind, sender and receiver nonces, frame 0, chunk 0 of 1.
fn chunk(kind: u8, sender: u64, receiver: u64, payload: &[u8]) -> Vec<u8> {
    let mut out = b"CLMQ\x01".to_vec();
    out.push(kind);
    out.extend_from_slice(&sender.to_be_bytes());
    out.extend_from_slice(&receiver.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1]);
    out.extend_from_slice(payload);
    out
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Publishes `payload` with `mosquitto_pub`, QoS 1, as a client from outside the project.
fn publish(broker: &Mosquitto, topic: &str, payload: &[u8]) {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), payload).unwrap();
    let status = std::process::Command::new("mosquitto_pub")
        .args(["-p", &broker.port.to_string(), "-q", "1", "-t", topic, "-f"])
        .arg(file.path())
        .status()
        .expect("mosquitto_pub runs");
    assert!(status.success());
}

#[test]
fn a_peer_on_iroh_and_mqtt_falls_back_to_mqtt_when_iroh_is_lost() {
    let root = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(&root.path().join("broker"));
    let (a_dir, b_dir) = (root.path().join("a"), root.path().join("b"));
    let b_id = node_id_of(&b_dir);
    let mut b = Culao::start_with(&b_dir, 0, &[], &mqtt_config(&b_dir, &broker.url(), &[], ""));
    let a_config = mqtt_config(&a_dir, &broker.url(), &[&b_id], "fallback_after_ms = 2000");
    let a = Culao::start_with(&a_dir, 0, &[b.peer_arg()], &a_config);

    assert_eq!(a.put("tickets", &doc_id(1), r#"{"seat":1}"#).0, 200);
    eventually(WAIT, "the first write on B", || holds(&b, "tickets", 1));
    assert!(
        !common::read_log(&a.dir).contains("connected over MQTT"),
        "iroh is preferred while it works"
    );

    // B comes back on another UDP port: A's iroh address for it is dead, the broker is not.
    b.stop();
    for n in 2..=50 {
        assert_eq!(
            a.put("tickets", &doc_id(n), &format!(r#"{{"seat":{n}}}"#))
                .0,
            200
        );
    }
    let b = Culao::start_with(&b_dir, 0, &[], &mqtt_config(&b_dir, &broker.url(), &[], ""));
    eventually(WAIT, "A's writes on B over MQTT", || {
        (1..=50).all(|n| holds(&b, "tickets", n))
    });
    assert!(common::read_log(&a.dir).contains("connected over MQTT"));
}
