//! The island's activity, written through the real records API on the boxes' replicas.
//!
//! Each generator is a Poisson process at a scenario rate (or a timetable, for the ferry),
//! picks the box that would do the work by its role, and calls the records function a
//! site's staff would trigger. What the records refuse (an allowance too small, a pass not
//! yet arrived at the gate) is counted, never forced.
//!
//! Documents: one per pass (`tickets`), per wallet and per card (`cards`), per resort's
//! bookings (`bookings`), per patient (`health`), per announcement (`radio`), per fixture
//! (`sports`).
//! Small documents keep each edit cheap; the rules that need several records together
//! (overlapping bookings of a resort, a pass's uses) find them in one document.
//!
//! This module holds the schedule and the dispatch; `ticketing` the passes, gates and
//! double uses; `people` the cards, attendance and allowance refills; `island` the rest of
//! the day.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use crdt_model::records::values::{NodeRef, RecordId, Text, Timestamp, Vnd};
use crdt_model::records::wallet::{self, TopUp, TopUpMethod, Wallet};
use crdt_model::{DocId, DocKey, Scope};
use provisioning::policy::Role;

mod island;
mod people;
mod ticketing;

use crate::SimError;
use crate::world::{Event, HOUR, Micros, SECOND, World, hours, minutes};

/// One piece of scheduled work.
#[derive(Debug, Clone)]
pub(crate) enum Work {
    HubSale {
        sailing: usize,
    },
    Arrival {
        sailing: usize,
    },
    /// One passenger at the port's gate.
    Gate {
        pass: usize,
    },
    IslandSale,
    Visit,
    DoubleUse,
    Payment,
    BookingRequest,
    CheckIn,
    BookingAnswers {
        resort: usize,
    },
    ClinicVisit,
    Announcement,
    Fixture,
    Result {
        at_box: usize,
        fixture: u64,
    },
    Attendance,
    /// A commune hall tops up the paying boxes' allowances on its wallets.
    Refill {
        hall: usize,
    },
}

#[derive(Debug)]
pub(crate) struct PassInfo {
    pub id: RecordId,
    pub key: DocKey,
    /// The box the attraction entry's right was delegated to.
    pub delegate: Option<usize>,
}

/// What the workload has created so far, for later work and for the checks.
#[derive(Debug, Default)]
pub(crate) struct WorkState {
    pub passes: Vec<PassInfo>,
    sailings: Vec<Vec<usize>>,
    /// Passes whose attraction entry has not been used yet.
    open_visits: Vec<usize>,
    /// Passes on which a double use really happened (both uses were accepted).
    pub injected: BTreeSet<RecordId>,
    pub wallets: Vec<DocKey>,
    pub wallet_ids: Vec<RecordId>,
    /// The commune hall that owns each wallet.
    wallet_owners: Vec<usize>,
    cards: Vec<people::CardInfo>,
    /// (resort box, its bookings document).
    pub resort_docs: Vec<(usize, DocKey)>,
    /// (resort box, its lodging document: establishment, rooms, registrations).
    lodging_docs: Vec<(usize, DocKey)>,
    next_id: u64,
}

fn internal(err: impl std::fmt::Display) -> SimError {
    SimError::Internal(err.to_string())
}

pub(crate) fn doc_key(scope: &str, name: &str) -> Result<DocKey, SimError> {
    let digest = blake3::hash(format!("{scope}/{name}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest.as_bytes()[..16]);
    Ok(DocKey {
        scope: Scope::new(scope).map_err(internal)?,
        doc: DocId::from_bytes(bytes),
    })
}

fn rid(value: &str) -> Result<RecordId, SimError> {
    RecordId::new("id", value).map_err(internal)
}

fn node_ref(name: &str) -> Result<NodeRef, SimError> {
    NodeRef::new("node", name).map_err(internal)
}

fn text(value: &str) -> Result<Text, SimError> {
    Text::new("text", value).map_err(internal)
}

impl World {
    fn boxes_with(&self, roles: &[Role]) -> Vec<usize> {
        (0..self.boxes.len())
            .filter(|b| roles.contains(&self.boxes[*b].role))
            .collect()
    }

    fn up_boxes_with(&self, roles: &[Role]) -> Vec<usize> {
        self.boxes_with(roles)
            .into_iter()
            .filter(|b| self.boxes[*b].up)
            .collect()
    }

    fn timestamp(&self, offset: i64) -> Result<Timestamp, SimError> {
        let ms = self.scenario.start_unix_s * 1000 + (self.now / 1000) as i64 + offset;
        Timestamp::from_millis("at", ms).map_err(internal)
    }

    fn today(&self) -> NaiveDate {
        let secs = self.scenario.start_unix_s + (self.now / SECOND) as i64;
        chrono::DateTime::from_timestamp(secs, 0)
            .map(|d| d.date_naive())
            .unwrap_or_default()
    }

    fn fresh(&mut self, prefix: &str) -> String {
        self.work.next_id += 1;
        format!("{prefix}-{}", self.work.next_id)
    }

    fn node_of(&self, b: usize) -> Result<NodeRef, SimError> {
        node_ref(&self.boxes[b].name)
    }

    fn schedule_poisson(&mut self, work: Work, per_h: f64) {
        if per_h <= 0.0 {
            return;
        }
        let gap = (self.work_rng.exp(3600.0 / per_h) * SECOND as f64) as Micros;
        let at = self.now + gap.max(1);
        if at < self.end {
            self.schedule(at, Event::Work(work));
        }
    }

    /// Schedules `work` again `every_min` minutes from now, if that is before the end.
    fn repeat(&mut self, work: Work, every_min: f64) {
        let at = self.now + minutes(every_min);
        if at < self.end {
            self.schedule(at, Event::Work(work));
        }
    }

    /// Opens the wallets and schedules every generator's first occurrence.
    pub(crate) fn setup_workload(&mut self) -> Result<(), SimError> {
        let w = self.scenario.workload.clone();
        let payers = self.boxes_with(&[Role::Port, Role::Resort]);
        for commune in self.boxes_with(&[Role::Commune]) {
            for i in 0..w.wallets_per_commune {
                self.open_wallet(commune, i, &payers)?;
            }
        }
        if w.allowance_refill_every_min > 0.0 {
            for hall in self.boxes_with(&[Role::Commune]) {
                self.repeat(Work::Refill { hall }, w.allowance_refill_every_min);
            }
        }
        self.issue_cards()?;
        for resort in self.boxes_with(&[Role::Resort]) {
            if w.lodging_check_ins_per_h > 0.0 {
                self.open_establishment(resort)?;
            }
            let key = doc_key("bookings", &self.boxes[resort].name)?;
            self.work.resort_docs.push((resort, key));
            if w.booking_requests_per_h > 0.0 {
                self.repeat(Work::BookingAnswers { resort }, w.booking_answer_every_min);
            }
        }

        if let Some(ferry) = self.scenario.ferry.clone()
            && w.passengers_per_sailing > 0
        {
            let days = (self.scenario.duration_h / 24.0).ceil() as u64;
            for day in 0..days {
                for dep in &ferry.departures_h {
                    let leave = hours(day as f64 * 24.0 + dep);
                    let arrive = leave + hours(ferry.crossing_h);
                    if arrive >= self.end {
                        continue;
                    }
                    let sailing = self.work.sailings.len();
                    self.work.sailings.push(Vec::new());
                    for _ in 0..w.passengers_per_sailing {
                        let offset = hours(0.25 + 1.75 * self.work_rng.unit());
                        let at = leave.saturating_sub(offset);
                        self.schedule(at, Event::Work(Work::HubSale { sailing }));
                    }
                    self.schedule(arrive, Event::Work(Work::Arrival { sailing }));
                }
            }
        }
        for _ in 0..w.double_redemptions {
            let at = self.end / 10 + (self.work_rng.unit() * (self.end as f64 * 0.8)) as Micros;
            self.schedule(at, Event::Work(Work::DoubleUse));
        }
        self.schedule_poisson(Work::IslandSale, w.island_sales_per_h);
        self.schedule_poisson(Work::Visit, w.attraction_visits_per_h);
        self.schedule_poisson(Work::Payment, w.payments_per_h);
        self.schedule_poisson(Work::BookingRequest, w.booking_requests_per_h);
        self.schedule_poisson(Work::ClinicVisit, w.clinic_visits_per_h);
        self.schedule_poisson(Work::CheckIn, w.lodging_check_ins_per_h);
        self.schedule_poisson(Work::Announcement, w.announcements_per_h);
        self.schedule_poisson(Work::Fixture, w.sports_results_per_h);
        self.schedule_poisson(Work::Attendance, w.attendance_per_h);
        Ok(())
    }

    fn open_wallet(&mut self, commune: usize, i: u32, payers: &[usize]) -> Result<(), SimError> {
        let name = format!("vi-{}-{i}", self.boxes[commune].name);
        let wallet_id = rid(&name)?;
        let key = doc_key("cards", &name)?;
        let owner = self.node_of(commune)?;
        let at = self.timestamp(0)?;
        let payer_refs: Vec<NodeRef> = payers
            .iter()
            .map(|p| self.node_of(*p))
            .collect::<Result<_, _>>()?;
        let wallet = Wallet {
            id: wallet_id.clone(),
            card: rid(&format!("the-{}-{i}", self.boxes[commune].name))?,
            owner: owner.clone(),
            opened_at: at,
        };
        let top_up = TopUp {
            node: owner.clone(),
            amount: Vnd::new("amount", 10_000_000).map_err(internal)?,
            method: TopUpMethod::Cash,
            at,
        };
        let allowance = Vnd::new("amount", 1_000_000).map_err(internal)?;
        let nap = rid("nap-0")?;
        let outcome = self.edit(commune, &key, |doc| {
            wallet::open(doc, &wallet)?;
            wallet::top_up(doc, &wallet.id, &nap, &top_up)?;
            for (n, payer) in payer_refs.iter().enumerate() {
                let mv = RecordId::derived("mv", &[wallet.id.as_str(), &n.to_string()]);
                wallet::move_allowance(doc, &wallet.id, &mv, &owner, payer, allowance, at)?;
            }
            Ok::<_, wallet::WalletError>(())
        })?;
        outcome.map_err(SimError::Internal)?;
        self.work.wallets.push(key);
        self.work.wallet_ids.push(wallet_id);
        self.work.wallet_owners.push(commune);
        Ok(())
    }

    pub(crate) fn do_work(&mut self, work: Work) -> Result<(), SimError> {
        let w = self.scenario.workload.clone();
        match work {
            Work::HubSale { sailing } => self.hub_sale(sailing)?,
            Work::Arrival { sailing } => self.arrival(sailing),
            Work::Gate { pass } => self.gate(pass)?,
            Work::IslandSale => {
                self.island_sale()?;
                self.schedule_poisson(Work::IslandSale, w.island_sales_per_h);
            }
            Work::Visit => {
                self.visit()?;
                self.schedule_poisson(Work::Visit, w.attraction_visits_per_h);
            }
            Work::DoubleUse => self.double_use()?,
            Work::Payment => {
                self.payment()?;
                self.schedule_poisson(Work::Payment, w.payments_per_h);
            }
            Work::BookingRequest => {
                self.booking_request()?;
                self.schedule_poisson(Work::BookingRequest, w.booking_requests_per_h);
            }
            Work::BookingAnswers { resort } => {
                self.booking_answers(resort)?;
                self.repeat(Work::BookingAnswers { resort }, w.booking_answer_every_min);
            }
            Work::CheckIn => {
                self.check_in()?;
                self.schedule_poisson(Work::CheckIn, w.lodging_check_ins_per_h);
            }
            Work::ClinicVisit => {
                self.clinic_visit()?;
                self.schedule_poisson(Work::ClinicVisit, w.clinic_visits_per_h);
            }
            Work::Announcement => {
                self.announcement()?;
                self.schedule_poisson(Work::Announcement, w.announcements_per_h);
            }
            Work::Fixture => {
                self.fixture()?;
                self.schedule_poisson(Work::Fixture, w.sports_results_per_h);
            }
            Work::Result { at_box, fixture } => self.result(at_box, fixture)?,
            Work::Attendance => {
                self.attendance()?;
                self.schedule_poisson(Work::Attendance, w.attendance_per_h);
            }
            Work::Refill { hall } => {
                self.refill_allowances(hall)?;
                self.repeat(Work::Refill { hall }, w.allowance_refill_every_min);
            }
        }
        Ok(())
    }
}

const HOUR_MS: i64 = (HOUR / 1000) as i64;
