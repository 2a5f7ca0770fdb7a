//! The card workload: attendance needs the card where it is taken, and the commune halls'
//! allowance refills keep card payments going at the paying boxes.

use culao_sim::{Scenario, simulate};

/// Two commune halls and a port that takes payments, all on Wi-Fi or 4G; the hub on the
/// mainland over the radio link.
const HALLS: &str = r#"
name = "two-halls"
duration_h = 6.0
settle_h = 1.0

[[boxes]]
name = "hub"
role = "hub"
site = "mainland"

[[boxes]]
name = "hall-a"
role = "commune"
site = "ngu-phung"

[[boxes]]
name = "hall-b"
role = "commune"
site = "long-hai"

[[boxes]]
name = "port"
role = "port"
site = "tam-thanh"

[[links]]
name = "a-b"
a = "hall-a"
b = "hall-b"
class = "4g"
bandwidth_bytes_per_s = 125000.0
latency_ms = 60.0
max_message_bytes = 1048576

[[links]]
name = "radio"
a = "hub"
b = "port"
class = "mainland-radio"
bandwidth_bytes_per_s = 250000.0
latency_ms = 30.0
max_message_bytes = 1048576

[[links]]
name = "a-port"
a = "hall-a"
b = "port"
class = "public-wifi"
bandwidth_bytes_per_s = 125000.0
latency_ms = 10.0
max_message_bytes = 1048576

[[links]]
name = "b-port"
a = "hall-b"
b = "port"
class = "public-wifi"
bandwidth_bytes_per_s = 125000.0
latency_ms = 10.0
max_message_bytes = 1048576

[workload]
staff_per_commune = 5
attendance_per_h = 60.0
wallets_per_commune = 2
payments_per_h = 40.0
"#;

fn counter(report: &culao_sim::Report, name: &str) -> u64 {
    report.workload.get(name).copied().unwrap_or(0)
}

#[test]
fn staff_attend_meetings_in_any_hall_their_card_has_reached() {
    let scenario = Scenario::parse(HALLS, None).unwrap();
    let report = simulate(scenario, 7, false).unwrap();
    assert!(report.passed, "{:?}", report.failure);
    assert!(
        counter(&report, "attendance") > 100,
        "{:?}",
        report.workload
    );

    // The halls cut off from each other and from the port: a card issued at one hall never
    // reaches the other, so about half the meetings are refused.
    let cut = format!(
        "{HALLS}\n[[faults]]\nkind = \"partition\"\nlinks = [\"a-b\", \"a-port\", \"b-port\"]\n\
         at_h = 0.0\nfor_h = 6.0\n"
    );
    let scenario = Scenario::parse(&cut, None).unwrap();
    let report = simulate(scenario, 7, false).unwrap();
    assert!(report.passed, "{:?}", report.failure);
    let (taken, refused) = (
        counter(&report, "attendance"),
        counter(&report, "attendance_refused"),
    );
    assert!(taken > 50 && refused > 50, "{:?}", report.workload);
}

#[test]
fn halls_refill_the_allowances_that_payments_use_up() {
    let without = simulate(Scenario::parse(HALLS, None).unwrap(), 3, false).unwrap();
    let with_refills = HALLS.replace(
        "payments_per_h = 40.0",
        "payments_per_h = 40.0\nallowance_refill_every_min = 20.0",
    );
    let with = simulate(Scenario::parse(&with_refills, None).unwrap(), 3, false).unwrap();
    assert!(
        without.passed && with.passed,
        "{:?} {:?}",
        without.failure,
        with.failure
    );
    assert_eq!(counter(&without, "allowance_refills"), 0);
    assert!(
        counter(&with, "allowance_refills") > 0,
        "{:?}",
        with.workload
    );
    assert!(
        counter(&without, "payments_refused") > 10,
        "{:?}",
        without.workload
    );
    assert!(
        counter(&with, "payments_refused") < counter(&without, "payments_refused") / 2,
        "refills keep payments going: {:?} vs {:?}",
        with.workload,
        without.workload
    );
}
