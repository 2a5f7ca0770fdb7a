//! A sweep runs every seed for every value of a parameter, writes each run's reports and a
//! summary, and refuses a parameter path that names nothing.

const SCENARIO: &str = r#"
name = "sweep"
duration_h = 1.0
settle_h = 1.0

[[boxes]]
name = "hub"
role = "hub"
site = "mainland"

[[boxes]]
name = "hall"
role = "commune"
site = "ngu-phung"

[[links]]
name = "radio"
a = "hub"
b = "hall"
class = "mainland-radio"
bandwidth_bytes_per_s = 250000.0
latency_ms = 30.0
max_message_bytes = 1048576

[workload]
announcements_per_h = 20.0
sports_results_per_h = 5.0

[[faults]]
kind = "partition"
links = ["radio"]
at_h = 0.2
for_h = 0.1
"#;

#[test]
fn a_sweep_over_the_outage_length_summarises_every_seed() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sweep.toml");
    std::fs::write(&file, SCENARIO).unwrap();
    let out = dir.path().join("out");

    let param = Some(("faults.0.for_h".to_owned(), vec![0.1, 0.5]));
    let summary = culao_sim::sweep(&file, 1..3, param, &out).unwrap();
    assert_eq!(summary.points.len(), 2);
    for point in &summary.points {
        assert_eq!(point.runs, 2);
        assert!(point.failed.is_empty(), "{:?}", point.failed);
        assert_eq!(point.settled_runs, 2);
    }
    assert!(out.join("sweep.json").exists());
    assert!(out.join("faults.0.for_h=0.5/seed-2/report.html").exists());
}

#[test]
fn a_sweep_parameter_that_names_nothing_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sweep.toml");
    std::fs::write(&file, SCENARIO).unwrap();
    let param = Some(("faults.3.for_h".to_owned(), vec![1.0]));
    let err = culao_sim::sweep(&file, 1..2, param, dir.path()).unwrap_err();
    assert!(err.to_string().contains("faults.3.for_h"), "{err}");
}

#[test]
fn a_sweep_sets_its_parameter_after_the_variant_is_merged() {
    let out = tempfile::tempdir().unwrap();
    let path =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios/phu-quy.toml#short");
    let param = Some(("faults.0.for_h".to_owned(), vec![0.5, 2.0]));
    let summary = culao_sim::sweep(&path, 1..2, param, out.path()).unwrap();
    assert_eq!(summary.scenario, "phu-quy#short");

    for (hours, point) in [0.5, 2.0].iter().zip(&summary.points) {
        assert!(point.failed.is_empty(), "{:?}", point.failed);
        let report = out
            .path()
            .join(format!("faults.0.for_h={hours}/seed-1/report.json"));
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(report).unwrap()).unwrap();
        let radio = report["links"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["name"] == "radio-port")
            .unwrap();
        let cut = radio["outages_s"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o[1].as_f64().unwrap() - o[0].as_f64().unwrap())
            .fold(0.0, f64::max);
        assert!(
            (cut - hours * 3600.0).abs() < 1.0,
            "{hours} h: longest cut {cut} s"
        );
    }
}
