//! The shipped Phú Quý scenario passes every check over a fixed set of seeds, and a run is
//! reproducible from its seed.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers panic on failure by design"
)]

use std::path::PathBuf;

use culao_sim::{Scenario, report_html, report_json, simulate};

fn scenario(variant: &str) -> Scenario {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios/phu-quy.toml");
    Scenario::load(&path, Some(variant)).unwrap()
}

#[test]
fn the_short_phu_quy_day_passes_every_check_over_fixed_seeds() {
    for seed in [1, 2, 3] {
        let report = simulate(scenario("short"), seed, false).unwrap();
        assert!(report.passed, "seed {seed}: {:?}", report.failure);
        assert!(report.settled_at_s.is_some(), "seed {seed} did not settle");
        assert!(report.writes > 100, "seed {seed}: {} writes", report.writes);
        assert!(report.checks.feeds_converged > 10);
    }
}

#[test]
fn two_runs_with_the_same_seed_give_identical_reports() {
    let a = simulate(scenario("short"), 7, false).unwrap();
    let b = simulate(scenario("short"), 7, false).unwrap();
    assert_eq!(report_json(&a).unwrap(), report_json(&b).unwrap());
    assert_eq!(report_html(&a), report_html(&b));
    let c = simulate(scenario("short"), 8, false).unwrap();
    assert_ne!(report_json(&a).unwrap(), report_json(&c).unwrap());
}

/// The whole shipped day, as a field tester runs it (about 18 s in a debug build).
#[test]
fn a_normal_phu_quy_day_passes_every_check() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios/phu-quy.toml");
    let scenario = Scenario::load(&path, None).unwrap();
    let report = simulate(scenario, 1, false).unwrap();
    assert!(report.passed, "{:?}", report.failure);
    assert_eq!(report.checks.double_uses_injected, 2);
    assert_eq!(report.checks.conflicts_detected, 2);
    assert!(!report.agreement_after_mainland_return.is_empty());
}
