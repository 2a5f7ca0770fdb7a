//! A box killed with SIGKILL while taking a stream of writes keeps every write it
//! acknowledged. Repeated, with several writers at once so that group commit is exercised.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Culao, doc_id};

const ROUNDS: u64 = 12;
const WRITERS: u64 = 4;

#[test]
fn no_acknowledged_write_is_lost_to_sigkill() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("box");
    let mut boxx = Culao::start(&dir, 0, &[]);
    let mut acknowledged_total = 0;

    for round in 0..ROUNDS {
        let acknowledged = Arc::new(Mutex::new(Vec::new()));
        let http = boxx.http;
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let acknowledged = Arc::clone(&acknowledged);
                std::thread::spawn(move || {
                    for i in 0.. {
                        let n = round * 1_000_000 + w * 100_000 + i;
                        let body = format!(r#"{{"round":{round},"n":{n}}}"#);
                        let path = format!("/v1/docs/tickets/{}", doc_id(n));
                        let (code, _) = common::http(http, "PUT", &path, &body);
                        if code != 200 {
                            return; // the box is gone
                        }
                        acknowledged.lock().unwrap().push(n);
                    }
                })
            })
            .collect();
        // Kill at a different moment each round.
        std::thread::sleep(Duration::from_millis(150 + round * 37 % 400));
        boxx.kill();
        for writer in writers {
            writer.join().unwrap();
        }

        boxx.restart();
        let acknowledged = acknowledged.lock().unwrap().clone();
        assert!(
            !acknowledged.is_empty(),
            "round {round} acknowledged nothing"
        );
        for n in &acknowledged {
            let (code, body) = boxx.get("tickets", &doc_id(*n));
            assert_eq!(code, 200, "round {round}: acknowledged write {n} lost");
            assert!(
                body.contains(&format!("\"n\":{n}")),
                "round {round}: {body}"
            );
        }
        acknowledged_total += acknowledged.len();
    }
    eprintln!("{acknowledged_total} acknowledged writes over {ROUNDS} kills, none lost");
}
