//! Scenario files: the island's boxes, the links between them, the workload, the faults.
//!
//! A scenario is TOML (documented field by field in `docs/sim.md`). [`Scenario::load`] reads
//! a file, applies a named variant (a table under `[variants.NAME]` merged over the base:
//! tables merge key by key, anything else replaces), deserialises and validates it.
//! Validation names the offending field (`links[3].b`) and value.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use provisioning::policy::Role;
use serde::{Deserialize, Serialize};

/// Why a scenario was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScenarioError {
    #[error("cannot read scenario {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("scenario {path} is not valid TOML for a scenario: {reason}")]
    Parse { path: String, reason: String },
    #[error("scenario has no variant {name:?}; it has: {known}")]
    NoVariant { name: String, known: String },
    #[error("{field}: {reason} (found {value:?})")]
    Invalid {
        field: String,
        value: String,
        reason: &'static str,
    },
}

fn invalid(field: impl Into<String>, value: impl ToString, reason: &'static str) -> ScenarioError {
    ScenarioError::Invalid {
        field: field.into(),
        value: value.to_string(),
        reason,
    }
}

/// A whole scenario, as written in the file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    /// Simulated time covered by workload and faults.
    pub duration_h: f64,
    /// After `duration_h`, every link is healed and every box restarted; the run then
    /// continues without workload until nothing is in flight, for at most this long.
    /// Absent: 12 hours.
    #[serde(default = "default_settle_h")]
    pub settle_h: f64,
    /// Wall-clock instant of virtual time 0, in seconds since the Unix epoch (record
    /// timestamps). Absent: 2025-04-29 17:00 UTC, midnight on the island.
    #[serde(default = "default_start")]
    pub start_unix_s: i64,
    /// Interval of the measurement samples (link use, lag over time). Absent: 15 minutes.
    #[serde(default = "default_sample_min")]
    pub sample_min: f64,
    #[serde(default)]
    pub ferry: Option<Ferry>,
    pub boxes: Vec<BoxSpec>,
    pub links: Vec<LinkSpec>,
    #[serde(default)]
    pub workload: Workload,
    #[serde(default)]
    pub faults: Vec<Fault>,
    /// Deliberate breakage, for proving that the checks can fail. Never set in a field
    /// scenario.
    #[serde(default)]
    pub knobs: Knobs,
    /// Named overrides; consumed by [`Scenario::load`].
    #[serde(default, skip_serializing)]
    pub variants: BTreeMap<String, toml::Value>,
}

fn default_settle_h() -> f64 {
    12.0
}

fn default_start() -> i64 {
    1_745_946_000
}

fn default_sample_min() -> f64 {
    15.0
}

/// The ferry timetable that "while-ferry-docked" links follow.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ferry {
    /// Departures from the mainland, in hours after midnight, repeated every day.
    pub departures_h: Vec<f64>,
    pub crossing_h: f64,
    /// Time at the island's quay before sailing back.
    pub island_dwell_h: f64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoxSpec {
    /// Unique, id-shaped (`port-tam-thanh`): also the box's name in the records.
    pub name: String,
    /// hub, port, commune, clinic, resort, school or ferry.
    pub role: String,
    /// The commune (or `mainland`, `sea`); a power cut takes down every box of a site.
    pub site: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LinkClass {
    PublicWifi,
    #[serde(rename = "4g")]
    FourG,
    Loudspeaker,
    MainlandRadio,
    FerryCarried,
}

impl LinkClass {
    pub fn name(self) -> &'static str {
        match self {
            LinkClass::PublicWifi => "public-wifi",
            LinkClass::FourG => "4g",
            LinkClass::Loudspeaker => "loudspeaker",
            LinkClass::MainlandRadio => "mainland-radio",
            LinkClass::FerryCarried => "ferry-carried",
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkSpec {
    /// Absent: `A--B`.
    #[serde(default)]
    pub name: Option<String>,
    pub a: String,
    pub b: String,
    pub class: LinkClass,
    pub bandwidth_bytes_per_s: f64,
    pub latency_ms: f64,
    /// Probability that a message is lost; a lost message breaks the connection, which is
    /// reopened after `reconnect_s`. Absent: 0.
    #[serde(default)]
    pub loss: f64,
    /// Probability that a message arrives with one byte flipped. Absent: 0.
    #[serde(default)]
    pub corrupt: f64,
    /// Largest message the link carries; the sync round budget is kept under it.
    pub max_message_bytes: usize,
    /// Delay before a broken connection is reopened. Absent: 5 s.
    #[serde(default = "default_reconnect_s")]
    pub reconnect_s: f64,
    #[serde(default)]
    pub availability: Availability,
}

fn default_reconnect_s() -> f64 {
    5.0
}

impl LinkSpec {
    pub fn display_name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("{}--{}", self.a, self.b))
    }
}

/// When a link can carry anything.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Availability {
    #[default]
    Always,
    /// Up only inside these windows (hours from the start), repeated every `repeat_h` if set.
    Schedule {
        windows_h: Vec<[f64; 2]>,
        #[serde(default)]
        repeat_h: Option<f64>,
    },
    /// Alternating exponential up and down times. Links naming the same `group` share one
    /// process (one radio mast, one power supply).
    Random {
        mean_up_h: f64,
        mean_down_h: f64,
        #[serde(default)]
        group: Option<String>,
    },
    /// Up while the ferry is docked at this side: `island` or `mainland`.
    FerryDocked { side: FerrySide },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FerrySide {
    Island,
    Mainland,
}

/// Rates of the island's activity. Each rate is a mean of a Poisson process over the run;
/// absent means none of that activity.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// Passes sold at the hub (mainland counters) for each sailing, in the two hours before
    /// it leaves, and checked at the port's gate when it arrives.
    #[serde(default)]
    pub passengers_per_sailing: u32,
    /// Passes sold at the port's counter (exit and one attraction entry).
    #[serde(default)]
    pub island_sales_per_h: f64,
    /// Attraction entries checked at the boxes the port delegated them to.
    #[serde(default)]
    pub attraction_visits_per_h: f64,
    /// Injected double uses: the port takes a delegated right back and uses it while the
    /// delegate, not yet aware, uses it too.
    #[serde(default)]
    pub double_redemptions: u32,
    /// Wallets opened at each commune hall at the start, each topped up and with an
    /// allowance moved to every paying box.
    #[serde(default)]
    pub wallets_per_commune: u32,
    /// Card payments at the port and the resorts.
    #[serde(default)]
    pub payments_per_h: f64,
    /// Room booking requests made at the port or a resort for a resort's rooms.
    #[serde(default)]
    pub booking_requests_per_h: f64,
    /// How often each resort answers its pending requests. Absent: 10 minutes.
    #[serde(default = "default_answer_min")]
    pub booking_answer_every_min: f64,
    /// Rooms per resort.
    #[serde(default = "default_rooms")]
    pub rooms_per_resort: u32,
    /// Guests registered at a resort's front desk (lodging registration).
    #[serde(default)]
    pub lodging_check_ins_per_h: f64,
    #[serde(default)]
    pub clinic_visits_per_h: f64,
    #[serde(default)]
    pub announcements_per_h: f64,
    #[serde(default)]
    pub sports_results_per_h: f64,
    /// Student cards each school issues at the start.
    #[serde(default)]
    pub students_per_school: u32,
    /// Staff cards each commune hall issues at the start.
    #[serde(default)]
    pub staff_per_commune: u32,
    /// Pupils checked into class at their school, or staff into a meeting at any commune
    /// hall (their card must have reached it).
    #[serde(default)]
    pub attendance_per_h: f64,
    /// How often each commune hall tops up the paying boxes' allowances on its wallets
    /// (those under 500,000 VND in its view get 1,000,000 more). Absent or 0: never.
    #[serde(default)]
    pub allowance_refill_every_min: f64,
}

impl Default for Workload {
    fn default() -> Self {
        Self {
            passengers_per_sailing: 0,
            island_sales_per_h: 0.0,
            attraction_visits_per_h: 0.0,
            double_redemptions: 0,
            wallets_per_commune: 0,
            payments_per_h: 0.0,
            booking_requests_per_h: 0.0,
            booking_answer_every_min: default_answer_min(),
            rooms_per_resort: default_rooms(),
            lodging_check_ins_per_h: 0.0,
            clinic_visits_per_h: 0.0,
            announcements_per_h: 0.0,
            sports_results_per_h: 0.0,
            students_per_school: 0,
            staff_per_commune: 0,
            attendance_per_h: 0.0,
            allowance_refill_every_min: 0.0,
        }
    }
}

fn default_answer_min() -> f64 {
    10.0
}

fn default_rooms() -> u32 {
    20
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Fault {
    /// The box stops (sessions and anything in flight are lost, its committed store is
    /// kept) and restarts after `for_h`.
    Crash {
        #[serde(rename = "box")]
        box_name: String,
        at_h: f64,
        for_h: f64,
    },
    /// Every box of `site` goes down together, as in a commune's power cut.
    PowerCut { site: String, at_h: f64, for_h: f64 },
    /// The named links carry nothing for `for_h`.
    Partition {
        links: Vec<String>,
        at_h: f64,
        for_h: f64,
    },
}

/// Test-only breakage.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Knobs {
    /// Sessions exchange every scope, whatever the roles may read.
    #[serde(default)]
    pub ignore_roles: bool,
    /// A payment skips the allowance check (written straight into the wallet's ledger).
    #[serde(default)]
    pub unchecked_payments: bool,
}

impl Scenario {
    /// Reads, merges `variant` (if any), deserialises and validates a scenario file.
    pub fn load(path: &Path, variant: Option<&str>) -> Result<Self, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, variant).map_err(|err| match err {
            ScenarioError::Parse { reason, .. } => ScenarioError::Parse {
                path: path.display().to_string(),
                reason,
            },
            other => other,
        })
    }

    /// As [`Scenario::load`], from text.
    pub fn parse(text: &str, variant: Option<&str>) -> Result<Self, ScenarioError> {
        Self::from_table(merged_table(text, variant)?)
    }

    /// Deserialises and validates a scenario table (variants already merged).
    pub fn from_table(table: toml::Table) -> Result<Self, ScenarioError> {
        let scenario: Scenario = table.try_into().map_err(|e| parse_err(&e))?;
        scenario.validate()?;
        Ok(scenario)
    }

    /// Checks everything serde cannot: references, ranges, uniqueness.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        positive("duration_h", self.duration_h)?;
        non_negative("settle_h", self.settle_h)?;
        positive("sample_min", self.sample_min)?;
        if self.boxes.is_empty() {
            return Err(invalid("boxes", "[]", "a scenario needs at least one box"));
        }

        let mut names = BTreeSet::new();
        for (i, b) in self.boxes.iter().enumerate() {
            let field = format!("boxes[{i}]");
            if crdt_model::records::NodeRef::new("name", &b.name).is_err() {
                return Err(invalid(format!("{field}.name"), &b.name, "not id-shaped"));
            }
            if !names.insert(b.name.as_str()) {
                return Err(invalid(
                    format!("{field}.name"),
                    &b.name,
                    "duplicate box name",
                ));
            }
            if b.role.parse::<Role>().is_err() {
                return Err(invalid(format!("{field}.role"), &b.role, "unknown role"));
            }
        }
        if !self.boxes.iter().any(|b| b.role == "hub") {
            return Err(invalid("boxes", "", "a scenario needs a box with role hub"));
        }

        let mut link_names = BTreeSet::new();
        for (i, link) in self.links.iter().enumerate() {
            let field = format!("links[{i}]");
            for (end, name) in [("a", &link.a), ("b", &link.b)] {
                if !names.contains(name.as_str()) {
                    return Err(invalid(format!("{field}.{end}"), name, "no such box"));
                }
            }
            if link.a == link.b {
                return Err(invalid(
                    format!("{field}.b"),
                    &link.b,
                    "a link joins two boxes",
                ));
            }
            if !link_names.insert(link.display_name()) {
                return Err(invalid(
                    format!("{field}.name"),
                    link.display_name(),
                    "duplicate link name",
                ));
            }
            positive(
                &format!("{field}.bandwidth_bytes_per_s"),
                link.bandwidth_bytes_per_s,
            )?;
            non_negative(&format!("{field}.latency_ms"), link.latency_ms)?;
            probability(&format!("{field}.loss"), link.loss)?;
            probability(&format!("{field}.corrupt"), link.corrupt)?;
            positive(&format!("{field}.reconnect_s"), link.reconnect_s)?;
            if link.max_message_bytes < 4096 {
                let f = format!("{field}.max_message_bytes");
                return Err(invalid(f, link.max_message_bytes, "must be at least 4096"));
            }
            self.validate_availability(&format!("{field}.availability"), &link.availability)?;
        }

        for (i, fault) in self.faults.iter().enumerate() {
            let field = format!("faults[{i}]");
            let (at_h, for_h) = match fault {
                Fault::Crash {
                    box_name,
                    at_h,
                    for_h,
                } => {
                    if !names.contains(box_name.as_str()) {
                        return Err(invalid(format!("{field}.box"), box_name, "no such box"));
                    }
                    (*at_h, *for_h)
                }
                Fault::PowerCut { site, at_h, for_h } => {
                    if !self.boxes.iter().any(|b| &b.site == site) {
                        return Err(invalid(
                            format!("{field}.site"),
                            site,
                            "no box at this site",
                        ));
                    }
                    (*at_h, *for_h)
                }
                Fault::Partition { links, at_h, for_h } => {
                    for (j, name) in links.iter().enumerate() {
                        if !link_names.contains(name) {
                            let f = format!("{field}.links[{j}]");
                            return Err(invalid(f, name, "no such link"));
                        }
                    }
                    (*at_h, *for_h)
                }
            };
            non_negative(&format!("{field}.at_h"), at_h)?;
            positive(&format!("{field}.for_h"), for_h)?;
        }

        let w = &self.workload;
        for (field, value) in [
            ("workload.island_sales_per_h", w.island_sales_per_h),
            (
                "workload.attraction_visits_per_h",
                w.attraction_visits_per_h,
            ),
            ("workload.payments_per_h", w.payments_per_h),
            ("workload.booking_requests_per_h", w.booking_requests_per_h),
            ("workload.clinic_visits_per_h", w.clinic_visits_per_h),
            (
                "workload.lodging_check_ins_per_h",
                w.lodging_check_ins_per_h,
            ),
            ("workload.announcements_per_h", w.announcements_per_h),
            ("workload.sports_results_per_h", w.sports_results_per_h),
            ("workload.attendance_per_h", w.attendance_per_h),
            (
                "workload.allowance_refill_every_min",
                w.allowance_refill_every_min,
            ),
        ] {
            non_negative(field, value)?;
        }
        positive(
            "workload.booking_answer_every_min",
            w.booking_answer_every_min,
        )?;
        if w.passengers_per_sailing > 0 && self.ferry.is_none() {
            let f = "workload.passengers_per_sailing";
            return Err(invalid(
                f,
                w.passengers_per_sailing,
                "needs a [ferry] timetable",
            ));
        }
        if let Some(ferry) = &self.ferry {
            positive("ferry.crossing_h", ferry.crossing_h)?;
            positive("ferry.island_dwell_h", ferry.island_dwell_h)?;
            for (i, d) in ferry.departures_h.iter().enumerate() {
                if !(0.0..24.0).contains(d) {
                    return Err(invalid(
                        format!("ferry.departures_h[{i}]"),
                        d,
                        "must be in 0..24",
                    ));
                }
            }
        }
        Ok(())
    }

    fn validate_availability(&self, field: &str, a: &Availability) -> Result<(), ScenarioError> {
        match a {
            Availability::Always => {}
            Availability::Schedule {
                windows_h,
                repeat_h,
            } => {
                for (i, [start, end]) in windows_h.iter().enumerate() {
                    non_negative(&format!("{field}.windows_h[{i}]"), *start)?;
                    if end <= start {
                        let f = format!("{field}.windows_h[{i}]");
                        return Err(invalid(
                            f,
                            format!("{start}..{end}"),
                            "must end after it starts",
                        ));
                    }
                    if let Some(repeat) = repeat_h
                        && end > repeat
                    {
                        let f = format!("{field}.windows_h[{i}]");
                        return Err(invalid(f, end, "must end within repeat_h"));
                    }
                }
                if let Some(repeat) = repeat_h {
                    positive(&format!("{field}.repeat_h"), *repeat)?;
                }
            }
            Availability::Random {
                mean_up_h,
                mean_down_h,
                ..
            } => {
                positive(&format!("{field}.mean_up_h"), *mean_up_h)?;
                positive(&format!("{field}.mean_down_h"), *mean_down_h)?;
            }
            Availability::FerryDocked { .. } => {
                if self.ferry.is_none() {
                    return Err(invalid(field, "ferry-docked", "needs a [ferry] timetable"));
                }
            }
        }
        Ok(())
    }
}

fn parse_err(err: &dyn std::fmt::Display) -> ScenarioError {
    ScenarioError::Parse {
        path: "<text>".into(),
        reason: err.to_string(),
    }
}

/// The scenario text as a table, with `variant` (if any) merged over the base.
pub fn merged_table(text: &str, variant: Option<&str>) -> Result<toml::Table, ScenarioError> {
    let mut value: toml::Table = toml::from_str(text).map_err(|e| parse_err(&e))?;
    let Some(name) = variant else {
        return Ok(value);
    };
    let variants = value.get("variants").and_then(toml::Value::as_table);
    let known = variants
        .map(|v| v.keys().cloned().collect::<Vec<_>>().join(", "))
        .unwrap_or_default();
    let Some(overlay) = variants.and_then(|v| v.get(name)).cloned() else {
        return Err(ScenarioError::NoVariant {
            name: name.to_owned(),
            known,
        });
    };
    let Some(overlay) = overlay.as_table() else {
        return Err(invalid(format!("variants.{name}"), "", "must be a table"));
    };
    merge(&mut value, overlay);
    let name_value = toml::Value::String(format!("{}#{name}", value_name(&value)));
    value.insert("name".into(), name_value);
    Ok(value)
}

fn value_name(value: &toml::Table) -> String {
    value
        .get("name")
        .and_then(toml::Value::as_str)
        .unwrap_or("scenario")
        .to_owned()
}

/// Merges `overlay` into `base`: tables key by key, anything else replaced.
fn merge(base: &mut toml::Table, overlay: &toml::Table) {
    for (key, value) in overlay {
        match (base.get_mut(key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            _ => {
                base.insert(key.clone(), value.clone());
            }
        }
    }
}

fn positive(field: &str, value: f64) -> Result<(), ScenarioError> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(invalid(field, value, "must be a positive number"))
    }
}

fn non_negative(field: &str, value: f64) -> Result<(), ScenarioError> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(invalid(field, value, "must be zero or more"))
    }
}

fn probability(field: &str, value: f64) -> Result<(), ScenarioError> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(invalid(field, value, "must be a probability in 0..=1"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &str = r#"
        name = "small"
        duration_h = 1.0
        [[boxes]]
        name = "hub"
        role = "hub"
        site = "mainland"
        [[boxes]]
        name = "port"
        role = "port"
        site = "tam-thanh"
        [[links]]
        a = "hub"
        b = "port"
        class = "mainland-radio"
        bandwidth_bytes_per_s = 1000000.0
        latency_ms = 20.0
        max_message_bytes = 1048576
        [variants.long]
        duration_h = 5.0
    "#;

    #[test]
    fn a_small_scenario_loads_with_its_defaults_and_variants() {
        let s = Scenario::parse(SMALL, None).unwrap();
        assert_eq!(s.duration_h, 1.0);
        assert_eq!(s.settle_h, 12.0);
        let long = Scenario::parse(SMALL, Some("long")).unwrap();
        assert_eq!(long.duration_h, 5.0);
        assert_eq!(long.name, "small#long");
        let err = Scenario::parse(SMALL, Some("short")).unwrap_err();
        assert!(err.to_string().contains("long"), "{err}");
    }

    #[test]
    fn errors_name_the_field_and_the_value() {
        let bad = SMALL.replace("b = \"port\"", "b = \"porte\"");
        let err = Scenario::parse(&bad, None).unwrap_err().to_string();
        assert!(err.contains("links[0].b") && err.contains("porte"), "{err}");

        let bad = SMALL.replace("role = \"port\"", "role = \"harbour\"");
        let err = Scenario::parse(&bad, None).unwrap_err().to_string();
        assert!(
            err.contains("boxes[1].role") && err.contains("harbour"),
            "{err}"
        );

        let bad = SMALL.replace(
            "[variants.long]",
            "[[faults]]\nkind = \"partition\"\nlinks = [\"radio\"]\nat_h = 1.0\nfor_h = 1.0\n\
             [variants.long]",
        );
        let err = Scenario::parse(&bad, None).unwrap_err().to_string();
        assert!(
            err.contains("faults[0].links[0]") && err.contains("radio"),
            "{err}"
        );

        let bad = SMALL.replace("latency_ms = 20.0", "latency_ms = 20.0\nloss = 1.5");
        let err = Scenario::parse(&bad, None).unwrap_err().to_string();
        assert!(err.contains("links[0].loss"), "{err}");
    }
}
