//! The command line: identity, default configuration, and clear start-up errors.

mod common;

use std::process::Command;

use common::{BIN, Culao};

#[test]
fn id_prints_the_same_node_id_as_the_running_box() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("box");
    let out = Command::new(BIN)
        .args(["id", "--data-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success());
    let id = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert_eq!(id.len(), 64);
    let boxx = Culao::start(&dir, 0, &[]);
    assert_eq!(boxx.node_id, id);
    assert_eq!(boxx.status()["node_id"], id.as_str());
}

/// A box turns mimalloc's eager arena commit off for itself (src/allocator.rs): it
/// re-executes itself once with the setting, under the same process id, and still serves.
#[test]
fn a_box_runs_with_eager_arena_commit_off() {
    let root = tempfile::tempdir().unwrap();
    let boxx = Culao::start(&root.path().join("box"), 0, &[]);
    let environ = std::fs::read(format!("/proc/{}/environ", boxx.pid())).unwrap();
    let settings: Vec<&[u8]> = environ.split(|b| *b == 0).collect();
    assert!(
        settings.contains(&&b"MIMALLOC_ARENA_EAGER_COMMIT=0"[..]),
        "the box's environment lacks the setting"
    );
    assert_eq!(boxx.status()["node_id"], boxx.node_id.as_str());
}

#[test]
fn config_prints_a_commented_default_that_up_accepts() {
    let out = Command::new(BIN).arg("config").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("data_dir = \"./culao-data\""));
    assert!(text.contains("listen = \"127.0.0.1:7070\""));
    assert!(
        text.lines().filter(|l| l.starts_with('#')).count() > 5,
        "it is commented"
    );
}

#[test]
fn a_store_that_cannot_be_opened_names_its_path() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("box");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("store"), b"not a directory").unwrap();
    let out = Command::new(BIN)
        .args([
            "up",
            "--http",
            "127.0.0.1:0",
            "--sync",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&dir.join("store").display().to_string()),
        "{stderr}"
    );
}

#[test]
fn a_bad_config_value_is_named() {
    let root = tempfile::tempdir().unwrap();
    let config = root.path().join("culao.toml");
    std::fs::write(&config, "[sync]\nround_budget_bytes = 3\n").unwrap();
    let out = Command::new(BIN)
        .args(["up", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("sync.round_budget_bytes"), "{stderr}");

    let out = Command::new(BIN)
        .args(["up", "--peer", "not-a-peer"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not-a-peer"));
}

#[test]
fn bad_requests_get_json_errors_and_store_nothing() {
    let root = tempfile::tempdir().unwrap();
    let boxx = Culao::start(&root.path().join("box"), 0, &[]);
    let id = common::doc_id(7);
    let cases = [
        ("Tickets", id.as_str(), "{\"a\":1}", 400, "invalid_scope"),
        ("tickets", "xyz", "{\"a\":1}", 400, "invalid_id"),
        ("tickets", id.as_str(), "{not json", 400, "invalid_json"),
        ("tickets", id.as_str(), "[1,2]", 400, "invalid_body"),
        ("tickets", id.as_str(), "{}", 400, "invalid_body"),
    ];
    for (scope, doc, body, code, error) in cases {
        let (got, answer) = boxx.put(scope, doc, body);
        assert_eq!(got, code, "{scope}/{doc} {body}: {answer}");
        let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(answer["error"], error, "{answer}");
    }
    let big = format!("{{\"a\":\"{}\"}}", "x".repeat(2 << 20));
    assert_eq!(boxx.put("tickets", &id, &big).0, 413);
    assert_eq!(boxx.get("tickets", &id).0, 404, "nothing was stored");
    assert_eq!(common::http(boxx.http, "GET", "/healthz", "").0, 200);
}
