//! `culao sim` as a field tester runs it: real processes, the shipped Phú Quý scenario.
#![expect(
    clippy::unwrap_used,
    reason = "helpers outside #[test] functions panic on failure by design"
)]

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::BIN;

const SCENARIO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/sim/scenarios/phu-quy.toml");

fn sim(args: &[&str], out: &Path) -> Output {
    Command::new(BIN)
        .arg("sim")
        .args(args)
        .arg("--out")
        .arg(out)
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap()
}

#[test]
fn a_run_writes_identical_reports_for_the_same_seed() {
    let root = tempfile::tempdir().unwrap();
    let short = format!("{SCENARIO}#short");
    let mut reports = Vec::new();
    for name in ["first", "second"] {
        let out = root.path().join(name);
        let output = sim(&["run", &short, "--seed", "7", "--quiet"], &out);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(stdout.contains("every check passed"), "{stdout}");
        let json = std::fs::read(out.join("report.json")).unwrap();
        let html = std::fs::read_to_string(out.join("report.html")).unwrap();
        assert!(html.contains("<svg"), "the page carries its plots inline");
        assert!(
            !html.contains("src=\"http"),
            "the page needs nothing from the network"
        );
        let parsed: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(parsed["seed"], 7, "{}", &parsed.to_string()[..200]);
        reports.push((json, html));
    }
    assert!(
        reports[0] == reports[1],
        "same scenario and seed, same bytes"
    );
}

#[test]
fn a_bad_scenario_or_variant_is_refused_with_what_was_wrong() {
    let root = tempfile::tempdir().unwrap();
    let output = sim(
        &["run", &format!("{SCENARIO}#no-such-day")],
        &root.path().join("a"),
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no-such-day") && stderr.contains("short"),
        "{stderr}"
    );

    let bad = root.path().join("bad.toml");
    std::fs::write(
        &bad,
        "duration_h = 1\n[[boxes]]\nname = \"a\"\nrole = \"hub\"\n",
    )
    .unwrap();
    let output = sim(&["run", bad.to_str().unwrap()], &root.path().join("b"));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("site") && stderr.contains("boxes"),
        "{stderr}"
    );
}
