//! The checks are not vacuous: a scenario built to break a rule is caught, with its seed
//! and an account; a link that corrupts messages breaks nothing, because every corrupted
//! frame is refused.

use culao_sim::{Scenario, SimError, run_scenario, simulate};

const SMALL: &str = r#"
name = "three-boxes"
duration_h = 2.0
settle_h = 2.0

[[boxes]]
name = "hub"
role = "hub"
site = "mainland"

[[boxes]]
name = "clinic"
role = "clinic"
site = "ngu-phung"

[[boxes]]
name = "hall"
role = "commune"
site = "ngu-phung"

[[boxes]]
name = "port"
role = "port"
site = "tam-thanh"

[[links]]
name = "radio"
a = "hub"
b = "clinic"
class = "mainland-radio"
bandwidth_bytes_per_s = 250000.0
latency_ms = 30.0
max_message_bytes = 1048576

[[links]]
name = "street"
a = "clinic"
b = "hall"
class = "4g"
bandwidth_bytes_per_s = 125000.0
latency_ms = 60.0
max_message_bytes = 1048576

[[links]]
name = "quay"
a = "hall"
b = "port"
class = "public-wifi"
bandwidth_bytes_per_s = 125000.0
latency_ms = 10.0
corrupt = 0.0
max_message_bytes = 1048576

[workload]
clinic_visits_per_h = 30.0
announcements_per_h = 10.0
island_sales_per_h = 20.0
attraction_visits_per_h = 10.0
double_redemptions = 1
"#;

#[test]
fn health_records_sent_past_the_roles_are_caught_with_the_seed() {
    let text = format!("{SMALL}\n[knobs]\nignore_roles = true\n");
    let scenario = Scenario::parse(&text, None).unwrap();
    let report = simulate(scenario, 11, false).unwrap();
    let failure = report.failure.expect("the check must fail");
    assert_eq!(failure.check, "no record where it may not be read");
    assert_eq!(failure.seed, 11);
    assert!(failure.account.contains("hall"), "{}", failure.account);
    assert!(failure.account.contains("health"), "{}", failure.account);
}

#[test]
fn a_failed_check_is_an_error_after_the_reports_are_written() {
    let text = format!("{SMALL}\n[knobs]\nignore_roles = true\n");
    let scenario = Scenario::parse(&text, None).unwrap();
    let out = tempfile::tempdir().unwrap();
    let err = run_scenario(scenario, 3, out.path(), false).unwrap_err();
    assert!(matches!(err, SimError::CheckFailed(_)), "{err}");
    let json = std::fs::read_to_string(out.path().join("report.json")).unwrap();
    assert!(json.contains("no record where it may not be read"));
    assert!(out.path().join("report.html").exists());
}

/// Regression, seed 11: the hub here holds no tickets (its only link, to the clinic, does
/// not carry them), and the double-use check once looked for conflicts only at the hub.
#[test]
fn double_uses_are_judged_where_the_tickets_are_when_the_hub_has_none() {
    let scenario = Scenario::parse(SMALL, None).unwrap();
    let report = simulate(scenario, 11, false).unwrap();
    assert!(report.passed, "{:?}", report.failure);
    assert_eq!(report.checks.double_uses_injected, 1);
    assert_eq!(report.checks.conflicts_detected, 1);
}

#[test]
fn a_link_that_corrupts_messages_breaks_no_rule() {
    let text = SMALL.replace("corrupt = 0.0", "corrupt = 0.05");
    let scenario = Scenario::parse(&text, None).unwrap();
    let report = simulate(scenario, 5, false).unwrap();
    assert!(report.passed, "{:?}", report.failure);
    let quay = report.links.iter().find(|l| l.name == "quay").unwrap();
    assert!(quay.corrupted_messages > 0);
    assert!(
        !quay.session_errors.is_empty(),
        "corrupted frames are refused"
    );
}
