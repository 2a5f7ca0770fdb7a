//! Boxes whose only common path is an MQTT broker (a mosquitto the test runs) converge, and
//! keep converging when the broker is killed and restarted in the middle of a large sync.
//! Three boxes where A–B talk iroh and B–C talk MQTT converge end to end.

mod common;

use std::time::Duration;

use common::{Culao, Mosquitto, doc_id, eventually, mqtt_config, node_id_of};

const WAIT: Duration = Duration::from_secs(90);
const DOCS: u64 = 400;

fn has(boxx: &Culao, n: u64, seat: u64) -> bool {
    let (code, body) = boxx.get("tickets", &doc_id(n));
    code == 200 && body.contains(&format!("\"seat\":{seat}"))
}

/// Entries `from` has recorded sending to `to` in scope `tickets`.
fn sent(from: &Culao, to: &Culao) -> u64 {
    from.audit()["sent"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|row| row["peer"] == to.node_id.as_str() && row["scope"] == "tickets")
        .filter_map(|row| row["entries"].as_u64())
        .sum()
}

fn in_sync_with(boxx: &Culao, peer: &Culao) -> bool {
    boxx.peer_status(&peer.node_id).is_some_and(|p| {
        p["connected"] == true && p["entries_to_send"] == 0 && p["entries_to_receive"] == 0
    })
}

#[test]
fn two_boxes_converge_through_a_broker_that_is_restarted_mid_sync() {
    let root = tempfile::tempdir().unwrap();
    let mut broker = Mosquitto::start(&root.path().join("broker"));
    let (a_dir, b_dir) = (root.path().join("a"), root.path().join("b"));
    let b_id = node_id_of(&b_dir);
    // A opens the session; B only answers, so both sides of the handshake are exercised.
    // Small packets and one small round per round trip, so the catch-up takes long enough
    // to be cut in its middle.
    let a_config = mqtt_config(
        &a_dir,
        &broker.url(),
        &[&b_id],
        "max_packet_bytes = 4096\n[sync]\nround_budget_bytes = 1024",
    );
    let b_config = mqtt_config(&b_dir, &broker.url(), &[], "max_packet_bytes = 4096");
    let a = Culao::start_with(&a_dir, 0, &[], &a_config);
    let mut b = Culao::start_with(&b_dir, 0, &[], &b_config);

    assert_eq!(a.put("tickets", &doc_id(0), r#"{"seat":0}"#).0, 200);
    eventually(WAIT, "A's first document on B", || has(&b, 0, 0));
    assert_eq!(b.put("tickets", &doc_id(9999), r#"{"seat":9999}"#).0, 200);
    eventually(WAIT, "B's document on A", || has(&a, 9999, 9999));

    // A large catch-up: B is away while A writes, and the broker dies once B has started
    // to receive, then comes back.
    b.stop();
    for n in 1..=DOCS {
        let body = format!(
            r#"{{"seat":{n},"route":"Phan Thiết–Phú Quý","pad":"{}"}}"#,
            "x".repeat(200)
        );
        assert_eq!(a.put("tickets", &doc_id(n), &body).0, 200);
    }
    b.restart();
    eventually(WAIT, "B receiving A's writes", || has(&b, 1, 1));
    broker.kill();
    let missing_at_the_cut = (1..=DOCS).filter(|n| !has(&b, *n, *n)).count();
    assert!(
        missing_at_the_cut > 0,
        "the cut fell in the middle of the catch-up"
    );
    std::thread::sleep(Duration::from_secs(2));
    broker.restart();

    eventually(WAIT, "every write of A on B", || {
        (0..=DOCS).all(|n| has(&b, n, n))
    });
    eventually(WAIT, "A and B in sync again", || {
        in_sync_with(&a, &b) && in_sync_with(&b, &a)
    });
    let status = b.status();
    assert_eq!(status["waiting_changes"], 0, "{status}");
    assert_eq!(status["feeds"], 2, "A's feed and B's own: {status}");
    // Resumption from vectors: what was in flight at the cut may be sent again, the rest not.
    let resent = sent(&a, &b);
    assert!(
        resent > DOCS && resent < 2 * DOCS,
        "A sent B {resent} ticket entries for {} writes",
        DOCS + 1
    );
    assert_eq!(sent(&b, &a), 1, "B sends back none of A's entries");
    assert!(
        common::read_log(&a.dir).contains("MQTT broker connection lost"),
        "the broker's death was seen"
    );
    eprintln!(
        "A sent B {resent} ticket entries for {} writes; {missing_at_the_cut} were missing on B at the cut",
        DOCS + 1
    );
}

#[test]
fn iroh_and_mqtt_links_chain_three_boxes() {
    let root = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(&root.path().join("broker"));
    let (b_dir, c_dir) = (root.path().join("b"), root.path().join("c"));
    let c_id = node_id_of(&c_dir);
    let b_config = mqtt_config(&b_dir, &broker.url(), &[&c_id], "");
    let c_config = mqtt_config(&c_dir, &broker.url(), &[], "");
    let b = Culao::start_with(&b_dir, 0, &[], &b_config);
    let a = Culao::start(&root.path().join("a"), 0, &[b.peer_arg()]);
    let c = Culao::start_with(&c_dir, 0, &[], &c_config);

    for n in 0..20 {
        assert_eq!(
            a.put("tickets", &doc_id(n), &format!(r#"{{"seat":{n}}}"#))
                .0,
            200
        );
        assert_eq!(
            c.put(
                "tickets",
                &doc_id(100 + n),
                &format!(r#"{{"seat":{}}}"#, 100 + n)
            )
            .0,
            200
        );
    }
    eventually(WAIT, "A's writes on C", || (0..20).all(|n| has(&c, n, n)));
    eventually(WAIT, "C's writes on A", || {
        (100..120).all(|n| has(&a, n, n))
    });
}

#[test]
fn a_killed_and_restarted_box_replaces_its_session_once_it_proves_its_key() {
    let root = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(&root.path().join("broker"));
    let (a_dir, b_dir) = (root.path().join("a"), root.path().join("b"));
    let a_id = node_id_of(&a_dir);
    let a = Culao::start_with(&a_dir, 0, &[], &mqtt_config(&a_dir, &broker.url(), &[], ""));
    let b_config = mqtt_config(&b_dir, &broker.url(), &[&a_id], "");
    let mut b = Culao::start_with(&b_dir, 0, &[], &b_config);
    assert_eq!(a.put("tickets", &doc_id(1), r#"{"seat":1}"#).0, 200);
    eventually(WAIT, "the first write on B", || has(&b, 1, 1));

    // A still holds the old session when B, killed, comes back and opens a new one.
    b.kill();
    b.restart();
    assert_eq!(a.put("tickets", &doc_id(2), r#"{"seat":2}"#).0, 200);
    eventually(WAIT, "the next write on B", || has(&b, 2, 2));
    assert!(
        common::read_log(&a.dir).contains("peer opened a new session"),
        "the old session was replaced by the verified new one, not left to time out"
    );
}

#[test]
fn a_client_reading_every_topic_sees_no_record_content() {
    let root = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start(&root.path().join("broker"));
    // Whoever may subscribe to everything on the broker: its operator, or a client its ACLs
    // let in. It records every payload, in hex.
    let mut spy = std::process::Command::new("mosquitto_sub")
        .args(["-p", &broker.port.to_string(), "-t", "#", "-F", "%x"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));

    let (a_dir, b_dir) = (root.path().join("a"), root.path().join("b"));
    let b_id = node_id_of(&b_dir);
    let a = Culao::start_with(
        &a_dir,
        0,
        &[],
        &mqtt_config(&a_dir, &broker.url(), &[&b_id], ""),
    );
    let b = Culao::start_with(&b_dir, 0, &[], &mqtt_config(&b_dir, &broker.url(), &[], ""));
    let secret = "Nguyen-Thi-Hoa-passport-B1234567";
    let body = format!(r#"{{"seat":7,"holder":"{secret}"}}"#);
    assert_eq!(a.put("tickets", &doc_id(7), &body).0, 200);
    eventually(WAIT, "the ticket on B", || has(&b, 7, 7));
    std::thread::sleep(Duration::from_millis(500));

    let _ = spy.kill();
    let mut seen = String::new();
    std::io::Read::read_to_string(&mut spy.stdout.take().unwrap(), &mut seen).unwrap();
    let _ = spy.wait();
    assert!(seen.lines().count() > 4, "the spy saw the session: {seen}");
    let needle: String = secret.bytes().map(|b| format!("{b:02x}")).collect();
    assert!(
        !seen.contains(&needle),
        "a record's content crossed the broker in the clear"
    );
}
