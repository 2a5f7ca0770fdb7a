//! What a run measures as it goes: arrivals and their lag, bytes and messages per link,
//! outages, agreement times, workload counters. Everything is keyed by ordered maps or
//! vectors, so the report built from it is the same for the same run.

use std::collections::BTreeMap;

use crdt_model::Scope;

use crate::scenario::Scenario;
use crate::world::{Micros, SECOND, SimBox, SimLink, minutes};

#[derive(Debug, Default)]
pub(crate) struct LinkMetrics {
    /// Per direction: from end a (index 0) and from end b.
    pub bytes: [u64; 2],
    pub messages: [u64; 2],
    /// Time spent transmitting, per direction.
    pub busy: [Micros; 2],
    /// Bytes (both directions) per sample interval.
    pub by_bucket: Vec<u64>,
    pub outages: Vec<(Micros, Micros)>,
    pub losses: u64,
    pub corrupted: u64,
    pub oversized: u64,
    pub connections: u64,
    pub session_errors: BTreeMap<String, u64>,
}

#[derive(Debug, Default)]
pub(crate) struct BoxMetrics {
    pub restarts: u64,
    pub outages: Vec<(Micros, Micros)>,
    pub down_since: Option<Micros>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Agreement {
    /// When a mainland link came back, seconds from the start.
    pub link_back_s: f64,
    /// How long until every box reachable from the hub held what the hub held; absent if
    /// the link dropped again (or the run ended) first.
    pub agreed_after_s: Option<f64>,
}

#[derive(Debug)]
pub(crate) struct Metrics {
    pub bucket: Micros,
    pub links: Vec<LinkMetrics>,
    pub boxes: Vec<BoxMetrics>,
    /// Per scope: (arrival time, lag) of every entry arriving at a box other than its origin.
    pub lags: BTreeMap<Scope, Vec<(Micros, Micros)>>,
    /// Per (scope, box): lags of arrivals there.
    pub lags_by_box: BTreeMap<(Scope, usize), Vec<Micros>>,
    /// Per (scope, link): lags of arrivals carried by the link's last hop.
    pub lags_by_link: BTreeMap<(Scope, usize), Vec<Micros>>,
    pub writes_by_scope: BTreeMap<Scope, u64>,
    pub agreements: Vec<Agreement>,
    /// Workload outcomes: sales, refusals, gate checks of passes not yet arrived...
    pub counters: BTreeMap<&'static str, u64>,
}

impl Metrics {
    pub fn new(scenario: &Scenario, boxes: &[SimBox], links: &[SimLink]) -> Self {
        Self {
            bucket: minutes(scenario.sample_min).max(SECOND),
            links: links.iter().map(|_| LinkMetrics::default()).collect(),
            boxes: boxes.iter().map(|_| BoxMetrics::default()).collect(),
            lags: BTreeMap::new(),
            lags_by_box: BTreeMap::new(),
            lags_by_link: BTreeMap::new(),
            writes_by_scope: BTreeMap::new(),
            agreements: Vec::new(),
            counters: BTreeMap::new(),
        }
    }

    pub fn count(&mut self, what: &'static str) {
        *self.counters.entry(what).or_default() += 1;
    }

    pub fn on_send(&mut self, link: usize, from_end: usize, len: usize, at: Micros, busy: Micros) {
        let m = &mut self.links[link];
        m.bytes[from_end] += len as u64;
        m.messages[from_end] += 1;
        m.busy[from_end] += busy;
        let bucket = (at / self.bucket) as usize;
        if m.by_bucket.len() <= bucket {
            m.by_bucket.resize(bucket + 1, 0);
        }
        m.by_bucket[bucket] += len as u64;
    }

    pub fn on_arrival(
        &mut self,
        scope: &Scope,
        at_box: usize,
        over: Option<usize>,
        now: Micros,
        lag: Micros,
    ) {
        self.lags.entry(scope.clone()).or_default().push((now, lag));
        if let Some(link) = over {
            self.lags_by_link
                .entry((scope.clone(), link))
                .or_default()
                .push(lag);
        }
        self.lags_by_box
            .entry((scope.clone(), at_box))
            .or_default()
            .push(lag);
    }

    pub fn on_write(&mut self, scope: &Scope, entries: usize) {
        *self.writes_by_scope.entry(scope.clone()).or_default() += entries as u64;
    }
}

/// p50, p95 and max of a set of durations, in seconds.
#[derive(Debug, Clone, Copy, serde::Serialize, PartialEq)]
pub struct Percentiles {
    pub count: u64,
    pub p50_s: f64,
    pub p95_s: f64,
    pub max_s: f64,
}

pub(crate) fn percentiles(values: &mut [Micros]) -> Percentiles {
    values.sort_unstable();
    let pick = |q: f64| -> f64 {
        if values.is_empty() {
            return 0.0;
        }
        let index = ((values.len() - 1) as f64 * q).round() as usize;
        values[index] as f64 / SECOND as f64
    };
    Percentiles {
        count: values.len() as u64,
        p50_s: round3(pick(0.5)),
        p95_s: round3(pick(0.95)),
        max_s: round3(pick(1.0)),
    }
}

/// Rounds to milliseconds, so reports do not carry float noise.
pub(crate) fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_set() {
        let mut v: Vec<Micros> = (1..=100).map(|s| s * SECOND).collect();
        let p = percentiles(&mut v);
        assert_eq!(p.count, 100);
        assert_eq!(p.max_s, 100.0);
        assert!((p.p50_s - 50.0).abs() <= 1.0);
        assert!((p.p95_s - 95.0).abs() <= 1.0);
        assert_eq!(percentiles(&mut []).count, 0);
    }
}
