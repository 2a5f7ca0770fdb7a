//! Simulated seconds per wall-clock second for the Phú Quý normal day and holiday peak, and
//! the process's peak memory. Run with `cargo bench -p culao-sim`.

#![expect(clippy::print_stdout, reason = "a benchmark prints its figures")]

use std::path::PathBuf;
use std::time::Instant;

use culao_sim::{Scenario, simulate};

/// Peak resident memory of this process (VmHWM), in KiB, where /proc is available.
fn peak_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The allocator the `culao` binary runs the simulator with.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scenarios/phu-quy.toml");
    println!("culao-sim: Phú Quý scenario, seed 1");
    for variant in [None, Some("holiday")] {
        let label = variant.unwrap_or("normal day");
        let scenario = match Scenario::load(&path, variant) {
            Ok(s) => s,
            Err(err) => {
                println!("{label}: {err}");
                return;
            }
        };
        let started = Instant::now();
        match simulate(scenario, 1, false) {
            Ok(report) => {
                let wall = started.elapsed().as_secs_f64();
                let simulated = report.settled_at_s.unwrap_or(report.duration_s);
                println!(
                    "{label:<12} {simulated:>8.0} simulated s in {wall:>6.2} wall s: \
                     {:>8.0} simulated s per wall s; {} writes, {} messages, checks {}",
                    simulated / wall,
                    report.writes,
                    report.messages,
                    if report.passed { "passed" } else { "FAILED" }
                );
            }
            Err(err) => println!("{label}: {err}"),
        }
        if let Some(kib) = peak_kib() {
            println!(
                "{:<12} peak memory so far (VmHWM): {:.1} MiB",
                "",
                kib as f64 / 1024.0
            );
        }
    }
}
