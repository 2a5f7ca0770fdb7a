//! Three boxes in a chain A–B–C (A and C never connected) converge, survive B being killed
//! in the middle of a sync, and keep everything across a restart of all three.

mod common;

use std::time::Duration;

use common::{Culao, doc_id, eventually};

const WAIT: Duration = Duration::from_secs(60);

fn has(boxx: &Culao, n: u64, seat: u64) -> bool {
    let (code, body) = boxx.get("tickets", &doc_id(n));
    code == 200 && body.contains(&format!("\"seat\":{seat}"))
}

#[test]
fn a_chain_converges_through_a_killed_and_restarted_middle_box() {
    let root = tempfile::tempdir().unwrap();
    let mut b = Culao::start(&root.path().join("b"), 0, &[]);
    let mut a = Culao::start(&root.path().join("a"), 0, &[b.peer_arg()]);
    let mut c = Culao::start(&root.path().join("c"), 0, &[b.peer_arg()]);

    // A document written on A appears on C.
    let (code, body) = a.put(
        "tickets",
        &doc_id(0),
        r#"{"route":"Phan Thiết–Phú Quý","seat":0}"#,
    );
    assert_eq!(code, 200, "{body}");
    eventually(WAIT, "the first document on C", || has(&c, 0, 0));

    // Many writes on A and some on C; B is killed while they flow, then restarted.
    for n in 1..=300 {
        let (code, body) = a.put("tickets", &doc_id(n), &format!(r#"{{"seat":{n}}}"#));
        assert_eq!(code, 200, "{body}");
        if n == 150 {
            b.kill();
        }
    }
    for n in 1000..1020 {
        assert_eq!(
            c.put("tickets", &doc_id(n), &format!(r#"{{"seat":{n}}}"#))
                .0,
            200
        );
    }
    b.restart();
    eventually(WAIT, "every write of A on C", || {
        (0..=300).all(|n| has(&c, n, n))
    });
    eventually(WAIT, "every write of C on A", || {
        (1000..1020).all(|n| has(&a, n, n))
    });

    // All three restarted: everything persists.
    for boxx in [&mut a, &mut b, &mut c] {
        boxx.stop();
    }
    for boxx in [&mut b, &mut a, &mut c] {
        boxx.restart();
    }
    for boxx in [&a, &b, &c] {
        assert!(
            (0..=300).all(|n| has(boxx, n, n)),
            "writes of A kept on {}",
            boxx.node_id
        );
        assert!(
            (1000..1020).all(|n| has(boxx, n, n)),
            "writes of C kept on {}",
            boxx.node_id
        );
    }
    eventually(WAIT, "A and C in sync with B again", || {
        [&a, &c].iter().all(|boxx| {
            let status = boxx.status();
            status["peers"][0]["connected"] == true
                && status["peers"][0]["entries_to_send"] == 0
                && status["peers"][0]["entries_to_receive"] == 0
        })
    });
}
