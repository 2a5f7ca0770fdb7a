//! The rest of the island's day: card payments, bookings and their answers, lodging
//! registrations, clinic visits, radio bulletins, sports fixtures and results.

use chrono::Duration;
use crdt_model::records::bookings::{self, Booking, ResourceKind};
use crdt_model::records::health::Encounter;
use crdt_model::records::lodging::{self, Establishment, EstablishmentKind, Registration, Room};
use crdt_model::records::radio::{self, Announcement, Priority};
use crdt_model::records::sports::{self, Fixture, ResultEntry, Score};
use crdt_model::records::store;
use crdt_model::records::values::{DateRange, IdCard, IdDocument, PersonName, Vnd};
use crdt_model::records::wallet::{self, Payment, Purpose};
use provisioning::policy::Role;

use super::{HOUR_MS, Work, doc_key, internal, rid, text};
use crate::SimError;
use crate::world::{Event, SECOND, World};

impl World {
    pub(super) fn payment(&mut self) -> Result<(), SimError> {
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

    pub(super) fn booking_request(&mut self) -> Result<(), SimError> {
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

    pub(super) fn booking_answers(&mut self, resort: usize) -> Result<(), SimError> {
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

    /// A resort's establishment and rooms, created by its box at the start.
    pub(super) fn open_establishment(&mut self, resort: usize) -> Result<(), SimError> {
        let name = self.boxes[resort].name.clone();
        let key = doc_key("lodging", &name)?;
        let establishment = Establishment {
            id: rid(&name)?,
            name: text(&name)?,
            kind: EstablishmentKind::Resort,
            commune: rid(&self.boxes[resort].site)?,
            address: text("Phú Quý, Lâm Đồng")?,
            phone: None,
            licence: None,
            owner: self.node_of(resort)?,
        };
        let rooms: Vec<Room> = (0..self.scenario.workload.rooms_per_resort.max(1))
            .map(|n| {
                Ok(Room {
                    id: rid(&format!("phong-{n}"))?,
                    establishment: establishment.id.clone(),
                    number: text(&format!("{}", 101 + n))?,
                    beds: 2,
                    nightly_rate: Vnd::new("rate", 450_000).map_err(internal)?,
                })
            })
            .collect::<Result<_, SimError>>()?;
        let outcome = self.edit(resort, &key, |doc| {
            store::insert(doc, &establishment)?;
            for room in &rooms {
                store::insert(doc, room)?;
            }
            Ok::<_, crdt_model::records::StoreError>(())
        })?;
        outcome.map_err(SimError::Internal)?;
        self.work.lodging_docs.push((resort, key));
        Ok(())
    }

    /// A guest registered at a resort's front desk.
    pub(super) fn check_in(&mut self) -> Result<(), SimError> {
        if self.work.lodging_docs.is_empty() {
            return Ok(());
        }
        let (resort, key) =
            self.work.lodging_docs[self.work_rng.below(self.work.lodging_docs.len())].clone();
        if !self.boxes[resort].up {
            self.metrics.count("check_in_box_down");
            return Ok(());
        }
        let rooms = self.scenario.workload.rooms_per_resort.max(1) as usize;
        let start = self.today();
        let end = start + Duration::days(1 + self.work_rng.below(3) as i64);
        let document = IdCard::new("document", "060190001234").map_err(internal)?;
        let registration = Registration {
            id: rid(&self.fresh("luu-tru"))?,
            establishment: rid(&self.boxes[resort].name)?,
            room: rid(&format!("phong-{}", self.work_rng.below(rooms)))?,
            guest: PersonName::new("guest", "Lê Thị Mai").map_err(internal)?,
            document: IdDocument::Citizen(document),
            stay: DateRange::new("stay", start, end).map_err(internal)?,
            checked_in_at: self.timestamp(0)?,
            checked_out_at: None,
            node: self.node_of(resort)?,
        };
        match self.edit(resort, &key, |doc| lodging::check_in(doc, &registration))? {
            Ok(()) => self.metrics.count("lodging_check_ins"),
            Err(_) => self.metrics.count("lodging_check_ins_refused"),
        }
        Ok(())
    }

    pub(super) fn clinic_visit(&mut self) -> Result<(), SimError> {
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

    pub(super) fn announcement(&mut self) -> Result<(), SimError> {
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

    pub(super) fn fixture(&mut self) -> Result<(), SimError> {
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

    pub(super) fn result(&mut self, at_box: usize, n: u64) -> Result<(), SimError> {
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
