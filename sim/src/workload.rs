//! The island's activity, written through the real records API on the boxes' replicas.
//!
//! Each generator is a Poisson process at a scenario rate (or a timetable, for the ferry),
//! picks the box that would do the work by its role, and calls the records function a
//! site's staff would trigger. What the records refuse (an allowance too small, a pass not
//! yet arrived at the gate) is counted, never forced.
//!
//! Documents: one per pass (`tickets`), per wallet (`cards`), per resort's bookings
//! (`bookings`), per patient (`health`), per announcement (`radio`), per fixture (`sports`).
//! Small documents keep each edit cheap; the rules that need several records together
//! (overlapping bookings of a resort, a pass's uses) find them in one document.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Duration, NaiveDate};
use crdt_model::records::bookings::{self, Booking, ResourceKind};
use crdt_model::records::health::Encounter;
use crdt_model::records::radio::{self, Announcement, Priority};
use crdt_model::records::sports::{self, Fixture, ResultEntry, Score};
use crdt_model::records::store;
use crdt_model::records::tickets::{self, Entitlement, EntitlementKind, Holder, Pass};
use crdt_model::records::values::{
    DateRange, IdCard, IdDocument, NodeRef, PersonName, RecordId, Text, Timestamp, Vnd,
};
use crdt_model::records::wallet::{self, Payment, Purpose, TopUp, TopUpMethod, Wallet};
use crdt_model::{DocId, DocKey, Scope};
use provisioning::policy::Role;

use crate::SimError;
use crate::world::{Event, HOUR, Micros, SECOND, World, hours};

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
    /// (resort box, its bookings document).
    pub resort_docs: Vec<(usize, DocKey)>,
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

    /// Opens the wallets and schedules every generator's first occurrence.
    pub(crate) fn setup_workload(&mut self) -> Result<(), SimError> {
        let w = self.scenario.workload.clone();
        let payers = self.boxes_with(&[Role::Port, Role::Resort]);
        for commune in self.boxes_with(&[Role::Commune]) {
            for i in 0..w.wallets_per_commune {
                self.open_wallet(commune, i, &payers)?;
            }
        }
        for resort in self.boxes_with(&[Role::Resort]) {
            let key = doc_key("bookings", &self.boxes[resort].name)?;
            self.work.resort_docs.push((resort, key));
            let every = (w.booking_answer_every_min * 60.0 * SECOND as f64) as Micros;
            if w.booking_requests_per_h > 0.0 {
                self.schedule(every, Event::Work(Work::BookingAnswers { resort }));
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
        self.schedule_poisson(Work::Announcement, w.announcements_per_h);
        self.schedule_poisson(Work::Fixture, w.sports_results_per_h);
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
                let every = (w.booking_answer_every_min * 60.0 * SECOND as f64) as Micros;
                self.schedule(
                    self.now + every,
                    Event::Work(Work::BookingAnswers { resort }),
                );
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
        }
        Ok(())
    }

    fn port(&self) -> Option<usize> {
        self.boxes_with(&[Role::Port]).into_iter().next()
    }

    fn new_pass(
        &mut self,
        id: &RecordId,
        issuer: &NodeRef,
        entitlements: Vec<(&str, EntitlementKind, NodeRef)>,
    ) -> Result<Pass, SimError> {
        let from = self.timestamp(-HOUR_MS)?;
        let until = self.timestamp(30 * 24 * HOUR_MS)?;
        let mut map = BTreeMap::new();
        for (name, kind, right) in entitlements {
            let e = Entitlement::new(kind, from, until, 1, right).map_err(internal)?;
            map.insert(rid(name)?, e);
        }
        let document = IdCard::new("document", "060190001234").map_err(internal)?;
        Ok(Pass {
            id: id.clone(),
            holder: Holder {
                name: PersonName::new("name", "Nguyễn Thị Hoa").map_err(internal)?,
                document: IdDocument::Citizen(document),
                phone: None,
                resident: false,
            },
            issuer: issuer.clone(),
            sold_at: self.timestamp(0)?,
            price: Vnd::new("price", 350_000).map_err(internal)?,
            entitlements: map,
            transferred_at: None,
        })
    }

    /// A pass sold at a mainland counter, checked at the island port's gate on arrival.
    fn hub_sale(&mut self, sailing: usize) -> Result<(), SimError> {
        let (Some(port), Some(hub)) = (self.port(), self.boxes_with(&[Role::Hub]).first().copied())
        else {
            return Ok(());
        };
        if !self.boxes[hub].up {
            self.metrics.count("sale_box_down");
            return Ok(());
        }
        let name = self.fresh("ve");
        let id = rid(&name)?;
        let key = doc_key("tickets", &name)?;
        let seller = self.node_of(hub)?;
        let right = self.node_of(port)?;
        let pass = self.new_pass(
            &id,
            &seller,
            vec![("vao", EntitlementKind::PortEntry, right)],
        )?;
        match self.edit(hub, &key, |doc| tickets::sell(doc, &pass, &seller))? {
            Ok(()) => {
                self.metrics.count("mainland_sales");
                let index = self.work.passes.len();
                self.work.passes.push(PassInfo {
                    id,
                    key,
                    delegate: None,
                });
                self.work.sailings[sailing].push(index);
            }
            Err(_) => self.metrics.count("mainland_sales_refused"),
        }
        Ok(())
    }

    /// The ferry arrives: passengers reach the port's gate from a minute after docking, one
    /// every three seconds (ASSUMPTION: one gate lane).
    fn arrival(&mut self, sailing: usize) {
        let passengers = self.work.sailings[sailing].clone();
        for (n, pass) in passengers.into_iter().enumerate() {
            let at = self.now + 60 * SECOND + 3 * SECOND * n as Micros;
            self.schedule(at, Event::Work(Work::Gate { pass }));
        }
    }

    /// The port's gate checks one passenger's pass.
    fn gate(&mut self, index: usize) -> Result<(), SimError> {
        let Some(port) = self.port() else {
            return Ok(());
        };
        if !self.boxes[port].up {
            self.metrics.count("gate_box_down");
            return Ok(());
        }
        let (pass_id, key) = {
            let p = &self.work.passes[index];
            (p.id.clone(), p.key.clone())
        };
        let redemption = tickets::Redemption {
            node: self.node_of(port)?,
            gate: rid("cong-1")?,
            by: rid("may-quet-1")?,
            at: self.timestamp(0)?,
        };
        let use_id = RecordId::derived("use", &[pass_id.as_str(), "vao"]);
        let vao = rid("vao")?;
        match self.edit(port, &key, |doc| {
            tickets::redeem(doc, &pass_id, &vao, &use_id, &redemption)
        })? {
            Ok(()) => self.metrics.count("gate_checks"),
            Err(_) => self.metrics.count("gate_pass_not_yet_arrived"),
        }
        Ok(())
    }

    /// A pass sold at the port's counter: port exit, and an attraction entry whose right
    /// the port delegates to the attraction's box.
    fn island_sale(&mut self) -> Result<(), SimError> {
        let Some(port) = self.port() else {
            return Ok(());
        };
        let attractions = self.boxes_with(&[Role::Commune, Role::Resort]);
        if !self.boxes[port].up || attractions.is_empty() {
            self.metrics.count("sale_box_down");
            return Ok(());
        }
        let Some(&delegate) = self.work_rng.pick(&attractions) else {
            return Ok(());
        };
        let name = self.fresh("ve");
        let id = rid(&name)?;
        let key = doc_key("tickets", &name)?;
        let port_ref = self.node_of(port)?;
        let delegate_ref = self.node_of(delegate)?;
        let attraction = EntitlementKind::AttractionEntry {
            attraction: rid(&format!("diem-{}", self.boxes[delegate].name))?,
        };
        let pass = self.new_pass(
            &id,
            &port_ref,
            vec![
                ("ra", EntitlementKind::PortExit, port_ref.clone()),
                ("tham-quan", attraction, port_ref.clone()),
            ],
        )?;
        let visit = rid("tham-quan")?;
        let outcome = self.edit(port, &key, |doc| {
            tickets::sell(doc, &pass, &port_ref)?;
            tickets::delegate(doc, &pass.id, &visit, &port_ref, Some(&delegate_ref))
        })?;
        match outcome {
            Ok(()) => {
                self.metrics.count("island_sales");
                let index = self.work.passes.len();
                self.work.passes.push(PassInfo {
                    id,
                    key,
                    delegate: Some(delegate),
                });
                self.work.open_visits.push(index);
            }
            Err(_) => self.metrics.count("island_sales_refused"),
        }
        Ok(())
    }

    fn redeem_visit(
        &mut self,
        at_box: usize,
        index: usize,
    ) -> Result<Result<(), String>, SimError> {
        let (pass_id, key) = {
            let p = &self.work.passes[index];
            (p.id.clone(), p.key.clone())
        };
        let redemption = tickets::Redemption {
            node: self.node_of(at_box)?,
            gate: rid("cong-chinh")?,
            by: rid("nhan-vien-1")?,
            at: self.timestamp(0)?,
        };
        let use_id = RecordId::derived("use", &[pass_id.as_str(), &self.boxes[at_box].name]);
        let visit = rid("tham-quan")?;
        self.edit(at_box, &key, |doc| {
            tickets::redeem(doc, &pass_id, &visit, &use_id, &redemption)
        })
    }

    /// A visitor shows the pass at the attraction the right was delegated to.
    fn visit(&mut self) -> Result<(), SimError> {
        if self.work.open_visits.is_empty() {
            return Ok(());
        }
        let slot = self.work_rng.below(self.work.open_visits.len());
        let index = self.work.open_visits[slot];
        let Some(at_box) = self.work.passes[index].delegate else {
            return Ok(());
        };
        if !self.boxes[at_box].up {
            self.metrics.count("visit_box_down");
            return Ok(());
        }
        match self.redeem_visit(at_box, index)? {
            Ok(()) => {
                self.work.open_visits.swap_remove(slot);
                self.metrics.count("attraction_visits");
            }
            // The pass or its delegation has not reached the attraction yet: the visitor is
            // turned away and may come back.
            Err(_) => self.metrics.count("visit_pass_not_yet_arrived"),
        }
        Ok(())
    }

    /// The port takes a delegated right back and uses it, while the delegate, which has not
    /// heard of the take-back, uses it too: the double use the records must surface.
    fn double_use(&mut self) -> Result<(), SimError> {
        let Some(port) = self.port() else {
            return Ok(());
        };
        if !self.boxes[port].up {
            self.metrics.count("double_use_skipped");
            return Ok(());
        }
        let visit = rid("tham-quan")?;
        for _ in 0..20 {
            if self.work.open_visits.is_empty() {
                break;
            }
            let slot = self.work_rng.below(self.work.open_visits.len());
            let index = self.work.open_visits[slot];
            let Some(delegate) = self.work.passes[index].delegate else {
                continue;
            };
            if !self.boxes[delegate].up {
                continue;
            }
            let key = self.work.passes[index].key.clone();
            let pass_id = self.work.passes[index].id.clone();
            let delegate_ref = self.node_of(delegate)?;
            let Some(doc) = self.read_doc(delegate, &key)? else {
                continue;
            };
            let holds = store::get::<Pass>(&doc, &pass_id)
                .ok()
                .flatten()
                .and_then(|p| p.entitlements.get(&visit).cloned())
                .is_some_and(|e| e.delegate.as_ref() == Some(&delegate_ref));
            if !holds {
                continue;
            }

            self.work.open_visits.swap_remove(slot);
            let port_ref = self.node_of(port)?;
            let redemption = tickets::Redemption {
                node: port_ref.clone(),
                gate: rid("cong-1")?,
                by: rid("may-quet-1")?,
                at: self.timestamp(0)?,
            };
            let use_id = RecordId::derived("use", &[pass_id.as_str(), "port-takeback"]);
            let at_port = self.edit(port, &key, |doc| {
                tickets::delegate(doc, &pass_id, &visit, &port_ref, None)?;
                tickets::redeem(doc, &pass_id, &visit, &use_id, &redemption)
            })?;
            let at_delegate = self.redeem_visit(delegate, index)?;
            if at_port.is_ok() && at_delegate.is_ok() {
                self.work.injected.insert(pass_id);
                self.metrics.count("double_uses_injected");
            } else {
                self.metrics.count("double_use_skipped");
            }
            return Ok(());
        }
        self.metrics.count("double_use_skipped");
        Ok(())
    }

    fn payment(&mut self) -> Result<(), SimError> {
        let payers = self.up_boxes_with(&[Role::Port, Role::Resort]);
        let (Some(&payer), false) = (self.work_rng.pick(&payers), self.work.wallets.is_empty())
        else {
            return Ok(());
        };
        let w = self.work_rng.below(self.work.wallets.len());
        let key = self.work.wallets[w].clone();
        let wallet_id = self.work.wallet_ids[w].clone();
        let amount = 20_000 + 10_000 * self.work_rng.below(29) as i128;
        let payment = Payment {
            node: self.node_of(payer)?,
            amount: Vnd::new("amount", amount).map_err(internal)?,
            purpose: Purpose::Tourism,
            merchant: rid(&self.boxes[payer].name)?,
            at: self.timestamp(0)?,
        };
        let pay_id = rid(&self.fresh("tt"))?;
        match self.edit(payer, &key, |doc| {
            wallet::pay(doc, &wallet_id, &pay_id, &payment)
        })? {
            Ok(()) => self.metrics.count("payments"),
            Err(_) => self.metrics.count("payments_refused"),
        }
        Ok(())
    }

    fn booking_request(&mut self) -> Result<(), SimError> {
        let requesters = self.up_boxes_with(&[Role::Port, Role::Resort]);
        let Some(&requester) = self.work_rng.pick(&requesters) else {
            return Ok(());
        };
        if self.work.resort_docs.is_empty() {
            return Ok(());
        }
        let r = self.work_rng.below(self.work.resort_docs.len());
        let (resort, key) = self.work.resort_docs[r].clone();
        let rooms = self.scenario.workload.rooms_per_resort.max(1) as usize;
        let room = rid(&format!("phong-{}", self.work_rng.below(rooms)))?;
        let start = self.today() + Duration::days(1 + self.work_rng.below(14) as i64);
        let end = start + Duration::days(1 + self.work_rng.below(3) as i64);
        let booking = Booking {
            id: rid(&self.fresh("dp"))?,
            resource_kind: ResourceKind::Room,
            resource: room,
            owner: self.node_of(resort)?,
            guest: PersonName::new("guest", "Trần Văn Bình").map_err(internal)?,
            phone: None,
            stay: DateRange::new("stay", start, end).map_err(internal)?,
            price: Vnd::new("price", 450_000).map_err(internal)?,
            requested_by: self.node_of(requester)?,
            requested_at: self.timestamp(0)?,
            answer: None,
            cancelled_at: None,
        };
        match self.edit(requester, &key, |doc| bookings::request(doc, &booking))? {
            Ok(()) => self.metrics.count("booking_requests"),
            Err(_) => self.metrics.count("booking_requests_refused"),
        }
        Ok(())
    }

    fn booking_answers(&mut self, resort: usize) -> Result<(), SimError> {
        if !self.boxes[resort].up {
            return Ok(());
        }
        let Some((_, key)) = self
            .work
            .resort_docs
            .iter()
            .find(|(b, _)| *b == resort)
            .cloned()
        else {
            return Ok(());
        };
        if self.read_doc(resort, &key)?.is_none() {
            return Ok(());
        }
        let owner = self.node_of(resort)?;
        let at = self.timestamp(0)?;
        let answers = self.edit(resort, &key, |doc| {
            bookings::answer_pending(doc, &owner, at)
        })?;
        if let Ok(answers) = answers {
            for (_, status) in answers {
                self.metrics.count(match status {
                    bookings::BookingStatus::Confirmed => "bookings_confirmed",
                    _ => "bookings_refused_overlap",
                });
            }
        }
        Ok(())
    }

    fn clinic_visit(&mut self) -> Result<(), SimError> {
        let clinics = self.up_boxes_with(&[Role::Clinic]);
        let Some(&clinic) = self.work_rng.pick(&clinics) else {
            return Ok(());
        };
        let patient = format!("bn-{}", self.work_rng.below(2000));
        let key = doc_key("health", &patient)?;
        let encounter = Encounter {
            id: rid(&self.fresh("kham"))?,
            summary: rid(&patient)?,
            clinic: rid(&self.boxes[clinic].name)?,
            practitioner: rid("bs-1")?,
            at: self.timestamp(0)?,
            reason: text("Khám sức khỏe")?,
            notes: text("Huyết áp bình thường")?,
            node: self.node_of(clinic)?,
        };
        match self.edit(clinic, &key, |doc| store::insert(doc, &encounter))? {
            Ok(()) => self.metrics.count("clinic_visits"),
            Err(_) => self.metrics.count("clinic_visits_refused"),
        }
        Ok(())
    }

    fn announcement(&mut self) -> Result<(), SimError> {
        let authors = self.up_boxes_with(&[Role::Commune, Role::Clinic, Role::Port]);
        let Some(&author) = self.work_rng.pick(&authors) else {
            return Ok(());
        };
        let name = self.fresh("tb");
        let key = doc_key("radio", &name)?;
        let priority = match self.work_rng.below(10) {
            0 => Priority::Emergency,
            1..=2 => Priority::Priority,
            _ => Priority::Normal,
        };
        let announcement = Announcement {
            id: rid(&name)?,
            text_vi: text("Thông báo của xã")?,
            text_en: None,
            priority,
            communes: [rid(&self.boxes[author].site)?].into(),
            play_from: self.timestamp(0)?,
            play_until: self.timestamp(2 * HOUR_MS)?,
            author: self.node_of(author)?,
            created_at: self.timestamp(0)?,
            replaces: None,
            cancelled: None,
        };
        match self.edit(author, &key, |doc| radio::issue(doc, &announcement))? {
            Ok(()) => self.metrics.count("announcements"),
            Err(_) => self.metrics.count("announcements_refused"),
        }
        Ok(())
    }

    fn fixture(&mut self) -> Result<(), SimError> {
        let organisers = self.up_boxes_with(&[Role::Commune, Role::School]);
        let Some(&organiser) = self.work_rng.pick(&organisers) else {
            return Ok(());
        };
        self.work.next_id += 1;
        let n = self.work.next_id;
        let key = doc_key("sports", &format!("tran-{n}"))?;
        let fixture = Fixture {
            id: rid(&format!("tran-{n}"))?,
            tournament: rid(&format!("giai-{}", self.boxes[organiser].site))?,
            home: rid(&format!("doi-a-{n}"))?,
            away: rid(&format!("doi-b-{n}"))?,
            kickoff: self.timestamp(0)?,
            venue: text("Sân vận động huyện")?,
            referees: [rid("trong-tai-1")?].into(),
        };
        if self
            .edit(organiser, &key, |doc| sports::schedule(doc, &fixture))?
            .is_ok()
        {
            let work = Work::Result {
                at_box: organiser,
                fixture: n,
            };
            self.schedule(self.now + 90 * 60 * SECOND, Event::Work(work));
        }
        Ok(())
    }

    fn result(&mut self, at_box: usize, n: u64) -> Result<(), SimError> {
        if !self.boxes[at_box].up {
            return Ok(());
        }
        let key = doc_key("sports", &format!("tran-{n}"))?;
        let entry = ResultEntry {
            score: Score {
                home: self.work_rng.below(5) as u32,
                away: self.work_rng.below(5) as u32,
            },
            at: self.timestamp(0)?,
            node: self.node_of(at_box)?,
        };
        let fixture = rid(&format!("tran-{n}"))?;
        let referee = rid("trong-tai-1")?;
        match self.edit(at_box, &key, |doc| {
            sports::enter_result(doc, &fixture, &referee, &entry)
        })? {
            Ok(()) => self.metrics.count("sports_results"),
            Err(_) => self.metrics.count("sports_results_refused"),
        }
        Ok(())
    }
}

const HOUR_MS: i64 = (HOUR / 1000) as i64;
