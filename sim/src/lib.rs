//! The culao network simulator: the real replica core of `crdt-model`, driven over modelled
//! links in virtual time, deterministic from a seed.
//!
//! # The map
//!
//! - [`scenario`]: the TOML scenario (boxes, links, availability, workload, faults), its
//!   variants and its validation.
//! - `world`: the discrete-event engine. One queue of events keyed by (virtual µs,
//!   sequence); boxes hold a [`crdt_model::Replica`] over a [`crdt_model::MemStore`]; every
//!   connected link runs two [`crdt_model::Session`]s whose encoded frames cross the link
//!   with serialization delay, latency, loss and corruption. A link's scope filter is the
//!   intersection of what its two boxes' roles may receive
//!   ([`provisioning::policy::Policy::standard`]).
//! - `workload`: ticket sales and gate checks, delegated attraction entries and injected
//!   double uses, wallet payments, bookings confirmed by resorts, lodging registrations,
//!   clinic visits, radio announcements and sports results, all through
//!   `crdt_model::records`.
//! - `checks`: convergence, no acknowledged write lost, no record where it may not be read,
//!   double uses detected (and none spurious), no wallet below zero, no overlapping confirmed
//!   bookings.
//! - `metrics` and [`report`]: lags, link use, outages, agreement times; `report.json` and a
//!   self-contained `report.html`.
//! - [`rng`]: the seeded generator every random draw comes from.
//!
//! # Invariants
//!
//! - Nothing reads the wall clock or iterates a hash map into an output: the same scenario
//!   and seed give byte-identical reports.
//! - A crash loses a box's sessions and whatever was in flight, never its committed store.
//! - After the scenario's duration every link is healed and every box is up; the run goes on
//!   without workload until nothing is in flight (or `settle_h` passes), then the checks run.
//!
//! # Known limits
//!
//! - Records are written on a copy of the replica's document and handed to the replica as a
//!   signed run of the box's own feed (see `World::edit`), because the records API edits an
//!   `AutoCommit` while `Replica::write` hands out a transaction.
//! - Live mode (real culao processes behind link-emulating proxies) is not built yet.
//! - Links of one mainland radio mast share an outage process only through a named `group`;
//!   bandwidth is not shared between links.

mod checks;
mod metrics;
pub mod report;
pub mod rng;
pub mod scenario;
mod workload;
mod world;

use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Serialize;

pub use checks::CheckCounts;
pub use metrics::{Agreement, Percentiles};
pub use report::Report;
pub use scenario::{Scenario, ScenarioError};

/// A check that failed, with the seed that reproduces it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CheckFailure {
    pub seed: u64,
    pub check: &'static str,
    /// Virtual time of the failure, seconds from the start.
    pub at_s: f64,
    pub account: String,
}

impl std::fmt::Display for CheckFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "check {:?} failed at {:.1} s with seed {}: {}",
            self.check, self.at_s, self.seed, self.account
        )
    }
}

/// Why a run did not complete, or completed with a failed check.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error("a replica failed: {0}")]
    Replica(#[from] crdt_model::ReplicaError),
    #[error("cannot write {path}: {source}")]
    Output {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The reports were written; they carry the same account.
    #[error("{0}")]
    CheckFailed(Box<CheckFailure>),
    #[error("sweep parameter {name:?}: {reason}")]
    Param { name: String, reason: String },
    #[error("simulator fault: {0}")]
    Internal(String),
}

/// What one run produced.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub scenario: String,
    pub seed: u64,
    pub simulated_s: f64,
    pub settled_at_s: Option<f64>,
    pub writes: u64,
    pub messages: u64,
    pub checks: CheckCounts,
    pub report_json: PathBuf,
    pub report_html: PathBuf,
}

/// Runs the scenario at `path` with `seed` and writes `report.json` and `report.html` into
/// `out` (created if needed). `path` may name a variant after a `#`
/// (`sim/scenarios/phu-quy.toml#holiday`). A failed check is [`SimError::CheckFailed`],
/// after the reports are written.
pub fn run_file(
    path: &Path,
    seed: u64,
    out: &Path,
    progress: bool,
) -> Result<RunSummary, SimError> {
    let (file, variant) = split_variant(path);
    let scenario = Scenario::load(&file, variant.as_deref())?;
    run_scenario(scenario, seed, out, progress)
}

/// Splits `file.toml#variant` when `file.toml` exists.
fn split_variant(path: &Path) -> (PathBuf, Option<String>) {
    let text = path.to_string_lossy();
    if let Some((file, variant)) = text.rsplit_once('#')
        && !path.exists()
        && Path::new(file).exists()
    {
        return (PathBuf::from(file), Some(variant.to_owned()));
    }
    (path.to_path_buf(), None)
}

/// Runs a scenario and returns its report without writing anything.
pub fn simulate(scenario: Scenario, seed: u64, progress: bool) -> Result<Report, SimError> {
    let mut world = world::World::new(scenario, seed)?;
    let started_name = world.scenario.name.clone();
    world.run(|now, deadline| {
        if progress {
            let pct = 100 * now / deadline.max(1);
            eprint!("\r{started_name} seed {seed}: {pct:>3}% of simulated time");
        }
    })?;
    if progress {
        eprintln!();
    }
    let counts = if world.failure.is_none() {
        checks::run_all(&mut world)?
    } else {
        CheckCounts::default()
    };
    Ok(report::build(&mut world, counts))
}

/// Runs a scenario and writes its reports into `out`.
pub fn run_scenario(
    scenario: Scenario,
    seed: u64,
    out: &Path,
    progress: bool,
) -> Result<RunSummary, SimError> {
    let report = simulate(scenario, seed, progress)?;
    let (json, html) = write_reports(&report, out)?;
    if let Some(failure) = &report.failure {
        return Err(SimError::CheckFailed(Box::new(failure.clone())));
    }
    Ok(RunSummary {
        scenario: report.scenario.clone(),
        seed,
        simulated_s: report.duration_s,
        settled_at_s: report.settled_at_s,
        writes: report.writes,
        messages: report.messages,
        checks: report.checks.clone(),
        report_json: json,
        report_html: html,
    })
}

/// The report's JSON form, as written to `report.json`.
pub fn report_json(report: &Report) -> Result<String, SimError> {
    serde_json::to_string_pretty(report).map_err(|e| SimError::Internal(e.to_string()))
}

/// The report's HTML page, as written to `report.html`.
pub fn report_html(report: &Report) -> String {
    report::html(report)
}

fn write_reports(report: &Report, out: &Path) -> Result<(PathBuf, PathBuf), SimError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| SimError::Output { path, source }
    };
    std::fs::create_dir_all(out).map_err(io(out))?;
    let json = out.join("report.json");
    let html = out.join("report.html");
    std::fs::write(&json, report_json(report)? + "\n").map_err(io(&json))?;
    std::fs::write(&html, report_html(report)).map_err(io(&html))?;
    Ok((json, html))
}

/// One point of a sweep: a parameter value (if any) over every seed.
#[derive(Debug, Clone, Serialize)]
pub struct SweepPoint {
    pub value: Option<f64>,
    pub runs: u64,
    pub failed: Vec<CheckFailure>,
    /// Largest p95 lag of any scope, median over the seeds, seconds.
    pub lag_p95_worst_scope_median_s: f64,
    pub messages_per_write_mean: f64,
    /// Longest time to agreement after the mainland link returned, over every run.
    pub agreement_max_s: Option<f64>,
    pub settled_runs: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SweepSummary {
    pub scenario: String,
    pub seeds: Vec<u64>,
    pub param: Option<String>,
    pub points: Vec<SweepPoint>,
    pub summary_json: PathBuf,
}

/// Runs the scenario at `path` for every seed in `seeds`, and, if `param` is given, for
/// every value of that parameter: a dotted path into the scenario, after its variant is
/// merged (`settle_h`, `workload.payments_per_h`, `faults.0.for_h`). Each run's reports go to
/// `out/<value>/seed-<n>/`, the summary to `out/sweep.json`. Failed checks are summarised,
/// not returned as errors.
pub fn sweep(
    path: &Path,
    seeds: Range<u64>,
    param: Option<(String, Vec<f64>)>,
    out: &Path,
) -> Result<SweepSummary, SimError> {
    let (file, variant) = split_variant(path);
    let text = std::fs::read_to_string(&file).map_err(|source| ScenarioError::Read {
        path: file.display().to_string(),
        source,
    })?;
    let base = scenario::merged_table(&text, variant.as_deref()).map_err(|err| match err {
        ScenarioError::Parse { reason, .. } => ScenarioError::Parse {
            path: file.display().to_string(),
            reason,
        },
        other => other,
    })?;
    let values: Vec<Option<f64>> = match &param {
        None => vec![None],
        Some((_, values)) => values.iter().copied().map(Some).collect(),
    };

    let mut points = Vec::new();
    let mut name = String::new();
    for value in values {
        let mut table = base.clone();
        let dir = match (&param, value) {
            (Some((path, _)), Some(v)) => {
                set_param(&mut table, path, v)?;
                out.join(format!("{path}={v}"))
            }
            _ => out.to_path_buf(),
        };
        let scenario = Scenario::from_table(table)?;
        name = scenario.name.clone();

        let mut failed = Vec::new();
        let mut worst = Vec::new();
        let mut mpw = 0.0;
        let mut agreement_max: Option<f64> = None;
        let mut settled_runs = 0;
        for seed in seeds.clone() {
            let report = simulate(scenario.clone(), seed, false)?;
            write_reports(&report, &dir.join(format!("seed-{seed}")))?;
            if let Some(f) = &report.failure {
                failed.push(f.clone());
            }
            let w = report
                .lag_by_scope
                .values()
                .map(|p| p.p95_s)
                .fold(0.0, f64::max);
            worst.push((w * 1000.0) as u64);
            mpw += report.messages_per_write;
            settled_runs += u64::from(report.settled_at_s.is_some());
            for a in &report.agreement_after_mainland_return {
                if let Some(s) = a.agreed_after_s {
                    agreement_max = Some(agreement_max.map_or(s, |m: f64| m.max(s)));
                }
            }
        }
        worst.sort_unstable();
        let runs = seeds.end.saturating_sub(seeds.start);
        points.push(SweepPoint {
            value,
            runs,
            failed,
            lag_p95_worst_scope_median_s: worst
                .get(worst.len() / 2)
                .map_or(0.0, |m| *m as f64 / 1000.0),
            messages_per_write_mean: metrics::round3(mpw / runs.max(1) as f64),
            agreement_max_s: agreement_max,
            settled_runs,
        });
    }

    let summary_json = out.join("sweep.json");
    let summary = SweepSummary {
        scenario: name,
        seeds: seeds.collect(),
        param: param.map(|(p, _)| p),
        points,
        summary_json: summary_json.clone(),
    };
    std::fs::create_dir_all(out).map_err(|source| SimError::Output {
        path: out.to_path_buf(),
        source,
    })?;
    let json =
        serde_json::to_string_pretty(&summary).map_err(|e| SimError::Internal(e.to_string()))?;
    std::fs::write(&summary_json, json + "\n").map_err(|source| SimError::Output {
        path: summary_json.clone(),
        source,
    })?;
    Ok(summary)
}

/// Sets a number at a dotted path (`faults.0.for_h`) in a scenario table.
fn set_param(table: &mut toml::Table, path: &str, value: f64) -> Result<(), SimError> {
    let err = |reason: &str| SimError::Param {
        name: path.to_owned(),
        reason: reason.to_owned(),
    };
    let parts: Vec<&str> = path.split('.').collect();
    let Some((last, walk)) = parts.split_last() else {
        return Err(err("empty path"));
    };
    let mut node: &mut toml::Value = match table.get_mut(walk.first().copied().unwrap_or(last)) {
        Some(v) if !walk.is_empty() => v,
        _ if walk.is_empty() => {
            table.insert((*last).to_owned(), toml::Value::Float(value));
            return Ok(());
        }
        _ => return Err(err("no such key")),
    };
    for part in &walk[1..] {
        node = match node {
            toml::Value::Table(t) => t.get_mut(*part).ok_or_else(|| err("no such key"))?,
            toml::Value::Array(a) => {
                let i: usize = part.parse().map_err(|_| err("expected an array index"))?;
                a.get_mut(i).ok_or_else(|| err("index out of range"))?
            }
            _ => return Err(err("path goes through a value")),
        };
    }
    match node {
        toml::Value::Table(t) => {
            t.insert((*last).to_owned(), toml::Value::Float(value));
        }
        toml::Value::Array(a) => {
            let i: usize = last.parse().map_err(|_| err("expected an array index"))?;
            *a.get_mut(i).ok_or_else(|| err("index out of range"))? = toml::Value::Float(value);
        }
        _ => return Err(err("path goes through a value")),
    }
    Ok(())
}
