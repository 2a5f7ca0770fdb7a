//! The run's report: [`Report`] as `report.json`, and a self-contained `report.html` with
//! inline SVG plots (lag over time, link use, outage timeline) and no external assets.
//!
//! Every number is derived from virtual time and counters; maps are ordered; floats are
//! rounded to milliseconds. The same run gives the same bytes.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::CheckFailure;
use crate::checks::CheckCounts;
use crate::metrics::{Agreement, Percentiles, percentiles, round3};
use crate::world::{Micros, SECOND, World};

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scenario: String,
    pub seed: u64,
    pub duration_s: f64,
    /// When the healed island had nothing left in flight; absent if it never settled.
    pub settled_at_s: Option<f64>,
    pub passed: bool,
    pub failure: Option<CheckFailure>,
    pub checks: CheckCounts,
    pub writes: u64,
    pub messages: u64,
    pub messages_per_write: f64,
    pub workload: BTreeMap<String, u64>,
    /// Write-to-arrival lag per scope, over every arrival at a box other than the writer.
    pub lag_by_scope: BTreeMap<String, Percentiles>,
    /// The same per scope and receiving box.
    pub lag_by_scope_and_box: BTreeMap<String, BTreeMap<String, Percentiles>>,
    /// The same per scope and the link that carried the last hop.
    pub lag_by_scope_and_link: BTreeMap<String, BTreeMap<String, Percentiles>>,
    pub links: Vec<LinkReport>,
    pub boxes: Vec<BoxReport>,
    pub agreement_after_mainland_return: Vec<Agreement>,
    pub sample_s: f64,
    /// Max lag (any scope) of arrivals in each sample interval, seconds.
    pub lag_max_over_time_s: Vec<f64>,
    /// The same per scope.
    pub lag_max_over_time_by_scope_s: BTreeMap<String, Vec<f64>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LinkReport {
    pub name: String,
    pub a: String,
    pub b: String,
    pub class: String,
    pub scopes: Vec<String>,
    pub bytes_a_to_b: u64,
    pub bytes_b_to_a: u64,
    pub messages_a_to_b: u64,
    pub messages_b_to_a: u64,
    /// Bytes carried over what the link could carry in the busier direction while it was
    /// connected, in percent.
    pub use_of_capacity_pct: f64,
    pub connected_s: f64,
    pub connections: u64,
    pub lost_messages: u64,
    pub corrupted_messages: u64,
    pub oversized_messages: u64,
    pub session_errors: BTreeMap<String, u64>,
    /// Disconnected intervals [from_s, to_s].
    pub outages_s: Vec<[f64; 2]>,
    pub bytes_per_sample: Vec<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BoxReport {
    pub name: String,
    pub role: String,
    pub site: String,
    pub restarts: u64,
    pub down_s: Vec<[f64; 2]>,
    pub documents: usize,
    pub feeds: usize,
}

fn s(t: Micros) -> f64 {
    round3(t as f64 / SECOND as f64)
}

pub(crate) fn build(world: &mut World, checks: CheckCounts) -> Report {
    let end_of_run = world.now;
    let bucket = world.metrics.bucket;

    let buckets = (end_of_run / bucket) as usize + 1;
    let mut lag_by_scope = BTreeMap::new();
    let mut lag_over_time: Vec<Micros> = vec![0; buckets];
    let mut lag_over_time_by_scope = BTreeMap::new();
    for (scope, lags) in &world.metrics.lags {
        let mut values: Vec<Micros> = lags.iter().map(|(_, l)| *l).collect();
        lag_by_scope.insert(scope.to_string(), percentiles(&mut values));
        let mut series: Vec<Micros> = vec![0; buckets];
        for (at, lag) in lags {
            let i = ((*at / bucket) as usize).min(buckets - 1);
            lag_over_time[i] = lag_over_time[i].max(*lag);
            series[i] = series[i].max(*lag);
        }
        let series: Vec<f64> = series.into_iter().map(s).collect();
        lag_over_time_by_scope.insert(scope.to_string(), series);
    }
    let mut lag_by_scope_and_box: BTreeMap<String, BTreeMap<String, Percentiles>> = BTreeMap::new();
    for ((scope, b), lags) in &world.metrics.lags_by_box {
        let mut values = lags.clone();
        lag_by_scope_and_box
            .entry(scope.to_string())
            .or_default()
            .insert(world.boxes[*b].name.clone(), percentiles(&mut values));
    }

    let mut lag_by_scope_and_link: BTreeMap<String, BTreeMap<String, Percentiles>> =
        BTreeMap::new();
    for ((scope, l), lags) in &world.metrics.lags_by_link {
        let mut values = lags.clone();
        lag_by_scope_and_link
            .entry(scope.to_string())
            .or_default()
            .insert(world.links[*l].name.clone(), percentiles(&mut values));
    }

    let mut links = Vec::new();
    let mut messages = 0;
    for (i, l) in world.links.iter().enumerate() {
        let m = &world.metrics.links[i];
        let mut outages: Vec<[f64; 2]> = m.outages.iter().map(|(a, b)| [s(*a), s(*b)]).collect();
        if let Some(since) = l.down_since {
            outages.push([s(since), s(end_of_run)]);
        }
        let down: Micros = m.outages.iter().map(|(a, b)| b - a).sum::<Micros>()
            + l.down_since.map_or(0, |d| end_of_run.saturating_sub(d));
        let connected = end_of_run.saturating_sub(down);
        let capacity =
            world.scenario.links[i].bandwidth_bytes_per_s * connected as f64 / SECOND as f64;
        let busiest = m.bytes[0].max(m.bytes[1]) as f64;
        let scopes = match &l.filter {
            crdt_model::session::ScopeFilter::All => vec!["*".to_owned()],
            crdt_model::session::ScopeFilter::Only(set) => {
                set.iter().map(|s| s.to_string()).collect()
            }
        };
        messages += m.messages[0] + m.messages[1];
        links.push(LinkReport {
            name: l.name.clone(),
            a: world.boxes[l.ends[0]].name.clone(),
            b: world.boxes[l.ends[1]].name.clone(),
            class: l.class.name().to_owned(),
            scopes,
            bytes_a_to_b: m.bytes[0],
            bytes_b_to_a: m.bytes[1],
            messages_a_to_b: m.messages[0],
            messages_b_to_a: m.messages[1],
            use_of_capacity_pct: if capacity > 0.0 {
                round3(100.0 * busiest / capacity)
            } else {
                0.0
            },
            connected_s: s(connected),
            connections: m.connections,
            lost_messages: m.losses,
            corrupted_messages: m.corrupted,
            oversized_messages: m.oversized,
            session_errors: m.session_errors.clone(),
            outages_s: outages,
            bytes_per_sample: m.by_bucket.clone(),
        });
    }

    let boxes = world
        .boxes
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let m = &world.metrics.boxes[i];
            let mut down: Vec<[f64; 2]> = m.outages.iter().map(|(a, b)| [s(*a), s(*b)]).collect();
            if let Some(since) = m.down_since {
                down.push([s(since), s(end_of_run)]);
            }
            BoxReport {
                name: b.name.clone(),
                role: b.role.to_string(),
                site: b.site.clone(),
                restarts: m.restarts,
                down_s: down,
                documents: b.replica.store().doc_count(),
                feeds: b.replica.heads().len(),
            }
        })
        .collect();

    let writes: u64 = world.metrics.writes_by_scope.values().sum();
    Report {
        scenario: world.scenario.name.clone(),
        seed: world.seed,
        duration_s: s(world.end),
        settled_at_s: world.settled_at.map(s),
        passed: world.failure.is_none(),
        failure: world.failure.clone(),
        checks,
        writes,
        messages,
        messages_per_write: if writes > 0 {
            round3(messages as f64 / writes as f64)
        } else {
            0.0
        },
        workload: world
            .metrics
            .counters
            .iter()
            .map(|(k, v)| ((*k).to_owned(), *v))
            .collect(),
        lag_by_scope,
        lag_by_scope_and_box,
        lag_by_scope_and_link,
        links,
        boxes,
        agreement_after_mainland_return: world.metrics.agreements.clone(),
        sample_s: s(bucket),
        lag_max_over_time_s: lag_over_time.into_iter().map(s).collect(),
        lag_max_over_time_by_scope_s: lag_over_time_by_scope,
    }
}

fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const W: f64 = 900.0;

const COLOURS: [&str; 9] = [
    "#1f6fb2", "#c0392b", "#2e8b57", "#8e44ad", "#d35400", "#16a085", "#7f8c8d", "#b7950b",
    "#34495e",
];

/// A line plot of one or more series over the run, with a legend.
fn line_svg(title: &str, unit: &str, sample_s: f64, series: &[(String, &[f64])]) -> String {
    let h = 240.0;
    let (left, bottom) = (60.0, 30.0);
    let max = series
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .fold(0.0_f64, f64::max)
        .max(1e-9);
    let len = series.iter().map(|(_, v)| v.len()).max().unwrap_or(0);
    let n = len.max(2) as f64;
    let mut lines = String::new();
    for (k, (name, values)) in series.iter().enumerate() {
        let colour = COLOURS[k % COLOURS.len()];
        let mut points = String::new();
        for (i, v) in values.iter().enumerate() {
            let x = left + (W - left - 10.0) * i as f64 / (n - 1.0);
            let y = (h - bottom) - (h - bottom - 10.0) * v / max;
            let _ = write!(points, "{x:.1},{y:.1} ");
        }
        let _ = write!(
            lines,
            "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\" \
             points=\"{points}\"/><text x=\"{lx:.1}\" y=\"22\" font-size=\"11\" \
             fill=\"{colour}\">{name}</text>",
            lx = left + 10.0 + 90.0 * k as f64,
            name = esc(name),
        );
    }
    let hours = sample_s * len as f64 / 3600.0;
    format!(
        "<h3>{}</h3><svg width=\"{W}\" height=\"{h}\" viewBox=\"0 0 {W} {h}\" \
         xmlns=\"http://www.w3.org/2000/svg\">\
         <rect x=\"{left}\" y=\"10\" width=\"{pw}\" height=\"{ph}\" fill=\"#f7f7f7\"/>\
         {lines}\
         <text x=\"5\" y=\"20\" font-size=\"11\">{max:.0} {unit}</text>\
         <text x=\"5\" y=\"{yb}\" font-size=\"11\">0</text>\
         <text x=\"{left}\" y=\"{yt}\" font-size=\"11\">0 h</text>\
         <text x=\"{xr}\" y=\"{yt}\" font-size=\"11\">{hours:.1} h</text></svg>",
        esc(title),
        pw = W - left - 10.0,
        ph = h - bottom - 10.0,
        yb = h - bottom,
        yt = h - 10.0,
        xr = W - 60.0,
    )
}

/// One bar per link: use of capacity.
fn bars_svg(report: &Report) -> String {
    let row = 18.0;
    let left = 300.0;
    let h = row * report.links.len() as f64 + 20.0;
    let max = report
        .links
        .iter()
        .map(|l| l.use_of_capacity_pct)
        .fold(0.0_f64, f64::max)
        .max(1e-6);
    let mut out = format!(
        "<h3>Link use (bytes in the busier direction / capacity while connected)</h3>\
         <svg width=\"{W}\" height=\"{h}\" xmlns=\"http://www.w3.org/2000/svg\">"
    );
    for (i, l) in report.links.iter().enumerate() {
        let y = 10.0 + row * i as f64;
        let w = (W - left - 80.0) * l.use_of_capacity_pct / max;
        let _ = write!(
            out,
            "<text x=\"5\" y=\"{ty}\" font-size=\"11\">{name} ({class})</text>\
             <rect x=\"{left}\" y=\"{y}\" width=\"{w:.1}\" height=\"{bh}\" fill=\"#2e8b57\"/>\
             <text x=\"{tx:.1}\" y=\"{ty}\" font-size=\"11\">{pct:.3}%</text>",
            ty = y + 12.0,
            name = esc(&l.name),
            class = esc(&l.class),
            bh = row - 4.0,
            tx = left + w + 4.0,
            pct = l.use_of_capacity_pct,
        );
    }
    out.push_str("</svg>");
    out
}

/// Rows of links and boxes, red where they were down.
fn timeline_svg(report: &Report) -> String {
    let row = 16.0;
    let left = 300.0;
    let span = report
        .settled_at_s
        .unwrap_or(report.duration_s)
        .max(report.duration_s);
    let rows: Vec<(String, &Vec<[f64; 2]>)> = report
        .links
        .iter()
        .map(|l| (format!("link {}", l.name), &l.outages_s))
        .chain(
            report
                .boxes
                .iter()
                .map(|b| (format!("box {}", b.name), &b.down_s)),
        )
        .collect();
    let h = row * rows.len() as f64 + 30.0;
    let scale = (W - left - 10.0) / span.max(1.0);
    let mut out = format!(
        "<h3>Outage timeline (red: down), 0 to {:.1} h</h3>\
         <svg width=\"{W}\" height=\"{h}\" xmlns=\"http://www.w3.org/2000/svg\">",
        span / 3600.0
    );
    for (i, (name, intervals)) in rows.iter().enumerate() {
        let y = 10.0 + row * i as f64;
        let _ = write!(
            out,
            "<text x=\"5\" y=\"{ty}\" font-size=\"11\">{}</text>\
             <rect x=\"{left}\" y=\"{y}\" width=\"{pw}\" height=\"{bh}\" fill=\"#e8f3e8\"/>",
            esc(name),
            ty = y + 11.0,
            pw = W - left - 10.0,
            bh = row - 4.0,
        );
        for [from, to] in intervals.iter() {
            let x = left + from.min(span) * scale;
            let w = ((to.min(span) - from.min(span)) * scale).max(0.5);
            let _ = write!(
                out,
                "<rect x=\"{x:.1}\" y=\"{y}\" width=\"{w:.1}\" height=\"{bh}\" fill=\"#c0392b\"/>",
                bh = row - 4.0,
            );
        }
    }
    let dx = left + report.duration_s * scale;
    let _ = write!(
        out,
        "<line x1=\"{dx:.1}\" y1=\"5\" x2=\"{dx:.1}\" y2=\"{h}\" stroke=\"#333\" \
         stroke-dasharray=\"4\"/></svg>"
    );
    out
}

pub(crate) fn html(report: &Report) -> String {
    let mut out = String::new();
    let verdict = match &report.failure {
        None => "<p class=\"ok\">All checks passed.</p>".to_owned(),
        Some(f) => format!(
            "<p class=\"bad\">Check failed: <b>{}</b> at {:.1} s (seed {}): {}</p>",
            esc(f.check),
            f.at_s,
            f.seed,
            esc(&f.account)
        ),
    };
    let _ = write!(
        out,
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>culao sim: {name}</title>\
         <style>body{{font-family:sans-serif;margin:20px;max-width:960px}}\
         table{{border-collapse:collapse;font-size:12px}}td,th{{border:1px solid #ccc;\
         padding:2px 6px;text-align:right}}th{{background:#eee}}td:first-child{{text-align:left}}\
         .ok{{color:#1a7f37}}.bad{{color:#b00020}}</style></head><body>\
         <h1>culao sim: {name}</h1><p>seed {seed} · {dur:.1} h simulated · settled at {settled} · \
         {writes} writes · {messages} messages ({mpw} per write)</p>{verdict}",
        name = esc(&report.scenario),
        seed = report.seed,
        dur = report.duration_s / 3600.0,
        settled = report
            .settled_at_s
            .map_or("never".to_owned(), |s| format!("{:.1} h", s / 3600.0)),
        writes = report.writes,
        messages = report.messages,
        mpw = report.messages_per_write,
    );

    out.push_str(
        "<h2>Lag from write to arrival, per scope</h2><table><tr><th>scope</th>\
                  <th>arrivals</th><th>p50 s</th><th>p95 s</th><th>max s</th></tr>",
    );
    for (scope, p) in &report.lag_by_scope {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td></tr>",
            esc(scope),
            p.count,
            p.p50_s,
            p.p95_s,
            p.max_s
        );
    }
    out.push_str("</table>");
    let series: Vec<(String, &[f64])> = report
        .lag_max_over_time_by_scope_s
        .iter()
        .map(|(scope, v)| (scope.clone(), v.as_slice()))
        .collect();
    out.push_str(&line_svg(
        "Max lag of the arrivals in each interval, per scope",
        "s",
        report.sample_s,
        &series,
    ));

    out.push_str(
        "<h2>Links</h2><table><tr><th>link</th><th>class</th><th>bytes a→b</th>\
                  <th>bytes b→a</th><th>messages</th><th>use %</th><th>connected h</th>\
                  <th>lost</th></tr>",
    );
    for l in &report.links {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.3}</td>\
             <td>{:.1}</td><td>{}</td></tr>",
            esc(&l.name),
            esc(&l.class),
            l.bytes_a_to_b,
            l.bytes_b_to_a,
            l.messages_a_to_b + l.messages_b_to_a,
            l.use_of_capacity_pct,
            l.connected_s / 3600.0,
            l.lost_messages
        );
    }
    out.push_str("</table>");
    out.push_str(&bars_svg(report));
    let total: Vec<f64> = {
        let len = report
            .links
            .iter()
            .map(|l| l.bytes_per_sample.len())
            .max()
            .unwrap_or(0);
        (0..len)
            .map(|i| {
                report
                    .links
                    .iter()
                    .map(|l| l.bytes_per_sample.get(i).copied().unwrap_or(0) as f64)
                    .sum::<f64>()
                    / 1024.0
            })
            .collect()
    };
    out.push_str(&line_svg(
        "Bytes on all links per sample interval",
        "KiB",
        report.sample_s,
        &[("all links".to_owned(), total.as_slice())],
    ));
    out.push_str(&timeline_svg(report));

    out.push_str(
        "<h2>Agreement after the mainland link returned</h2><table><tr>\
                  <th>link back at h</th><th>agreed after s</th></tr>",
    );
    for a in &report.agreement_after_mainland_return {
        let _ = write!(
            out,
            "<tr><td>{:.2}</td><td>{}</td></tr>",
            a.link_back_s / 3600.0,
            a.agreed_after_s
                .map_or("not before the next cut".to_owned(), |s| format!("{s:.0}"))
        );
    }
    out.push_str("</table><h2>Workload</h2><table>");
    for (k, v) in &report.workload {
        let _ = write!(out, "<tr><td>{}</td><td>{v}</td></tr>", esc(k));
    }
    let c = &report.checks;
    let _ = write!(
        out,
        "</table><h2>Checks</h2><table>\
         <tr><td>feeds converged</td><td>{}</td></tr>\
         <tr><td>acknowledged entries found everywhere entitled</td><td>{}</td></tr>\
         <tr><td>double uses injected</td><td>{}</td></tr>\
         <tr><td>conflicts detected</td><td>{}</td></tr>\
         <tr><td>wallets checked</td><td>{}</td></tr>\
         <tr><td>bookings confirmed</td><td>{}</td></tr></table></body></html>",
        c.feeds_converged,
        c.acknowledged_entries,
        c.double_uses_injected,
        c.conflicts_detected,
        c.wallets_checked,
        c.bookings_confirmed
    );
    out.push('\n');
    out
}
