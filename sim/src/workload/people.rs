//! The island's people on their cards: student and staff cards issued at the start, class
//! and meeting attendance through the day, and the commune halls keeping the paying boxes'
//! wallet allowances topped up.
//!
//! A card is one document in `cards`, written first by the box that issued it (the school
//! for a pupil, the commune hall for its staff); its attendance records join it there. A
//! staff member may attend a meeting at another commune's hall, which then needs the card to
//! have arrived by sync: until it has, the attendance is refused and counted as such.

use chrono::NaiveDate;
use crdt_model::records::cards::{
    self, Attendance, Card, Session, StaffEnrolment, StudentEnrolment,
};
use crdt_model::records::store;
use crdt_model::records::values::{IdCard, PersonName, Vnd};
use crdt_model::records::wallet;
use provisioning::policy::Role;

use super::{doc_key, internal, rid, text};
use crate::SimError;
use crate::world::World;

/// Below this (in the owner's view), a paying box's allowance on a wallet is topped up.
const REFILL_BELOW_VND: i128 = 500_000;
/// What each refill moves from the owner's share.
const REFILL_VND: i128 = 1_000_000;

/// One issued card, for the attendance generator.
#[derive(Debug, Clone)]
pub(crate) struct CardInfo {
    pub key: crdt_model::DocKey,
    pub id: crdt_model::records::values::RecordId,
    /// The box that issued it: the pupil's school, or the staff member's commune hall.
    pub issuer: usize,
    pub session: Session,
}

impl World {
    /// Issues the student cards of every school and the staff cards of every commune hall.
    pub(super) fn issue_cards(&mut self) -> Result<(), SimError> {
        let w = self.scenario.workload.clone();
        for school in self.boxes_with(&[Role::School]) {
            for i in 0..w.students_per_school {
                self.issue_card(school, i, Session::Class)?;
            }
        }
        for hall in self.boxes_with(&[Role::Commune]) {
            for i in 0..w.staff_per_commune {
                self.issue_card(hall, i, Session::Meeting)?;
            }
        }
        Ok(())
    }

    fn issue_card(&mut self, issuer: usize, i: u32, session: Session) -> Result<(), SimError> {
        let site = self.boxes[issuer].name.clone();
        let name = format!("the-{site}-{i}");
        let key = doc_key("cards", &name)?;
        let id = rid(&name)?;
        let site_id = rid(&site)?;
        let (student, staff) = match session {
            Session::Class => (
                Some(StudentEnrolment {
                    school: site_id.clone(),
                    class: rid(&format!("lop-{}", 6 + i % 4))?,
                    school_year: 2026,
                }),
                None,
            ),
            Session::Meeting => (
                None,
                Some(StaffEnrolment {
                    agency: site_id.clone(),
                    position: text("cán bộ")?,
                    doors: Default::default(),
                }),
            ),
        };
        let birth_year = if session == Session::Class {
            2012
        } else {
            1985
        };
        let card = Card {
            id: id.clone(),
            citizen_id: IdCard::new(
                "citizen_id",
                &format!("0601{:08}", issuer * 1000 + i as usize),
            )
            .map_err(internal)?,
            name: PersonName::new("name", "Nguyễn Thị Hoa").map_err(internal)?,
            birth_date: NaiveDate::from_ymd_opt(birth_year, 1 + i % 12, 1 + i % 28)
                .unwrap_or_default(),
            commune: site_id,
            issuer: self.node_of(issuer)?,
            issued_at: self.timestamp(0)?,
            profile: Default::default(),
            signing_key: None,
            memberships: Default::default(),
            student,
            staff,
        };
        self.edit(issuer, &key, |doc| store::insert(doc, &card))?
            .map_err(SimError::Internal)?;
        self.work.cards.push(CardInfo {
            key,
            id,
            issuer,
            session,
        });
        Ok(())
    }

    /// A pupil in class at their school, or a staff member at a meeting in any commune hall.
    pub(super) fn attendance(&mut self) -> Result<(), SimError> {
        let Some(card) = self.work_rng.pick(&self.work.cards).cloned() else {
            return Ok(());
        };
        let at_box = match card.session {
            Session::Class => Some(card.issuer).filter(|b| self.boxes[*b].up),
            Session::Meeting => {
                let halls = self.up_boxes_with(&[Role::Commune]);
                self.work_rng.pick(&halls).copied()
            }
        };
        let Some(at_box) = at_box else {
            return Ok(());
        };
        let attendance = Attendance {
            id: rid(&self.fresh("dd"))?,
            card: card.id.clone(),
            session: card.session,
            event: rid(&format!("buoi-{}", self.today()))?,
            at: self.timestamp(0)?,
            node: self.node_of(at_box)?,
        };
        match self.edit(at_box, &card.key, |doc| cards::attend(doc, &attendance))? {
            Ok(()) => self.metrics.count("attendance"),
            Err(_) => self.metrics.count("attendance_refused"),
        }
        Ok(())
    }

    /// Each commune hall moves more of its wallets' balance to the paying boxes whose
    /// allowance, as the hall last heard, runs low.
    pub(super) fn refill_allowances(&mut self, hall: usize) -> Result<(), SimError> {
        if !self.boxes[hall].up {
            return Ok(());
        }
        let owner = self.node_of(hall)?;
        let payers: Vec<_> = self
            .boxes_with(&[Role::Port, Role::Resort])
            .into_iter()
            .map(|p| self.node_of(p))
            .collect::<Result<_, _>>()?;
        let at = self.timestamp(0)?;
        let amount = Vnd::new("amount", REFILL_VND).map_err(internal)?;
        let wallets: Vec<(usize, crdt_model::DocKey)> = self
            .work
            .wallets
            .iter()
            .enumerate()
            .filter(|(w, _)| self.work.wallet_owners[*w] == hall)
            .map(|(w, key)| (w, key.clone()))
            .collect();
        for (w, key) in wallets {
            let wallet_id = self.work.wallet_ids[w].clone();
            let move_id = rid(&self.fresh("nap-han-muc"))?;
            let moved = self.edit(hall, &key, |doc| {
                let mut moved = 0u32;
                for (n, payer) in payers.iter().enumerate() {
                    let held = wallet::allowance(doc, &wallet_id, payer)?;
                    let spare = wallet::allowance(doc, &wallet_id, &owner)?;
                    if held < REFILL_BELOW_VND && spare >= REFILL_VND {
                        let id = crdt_model::records::values::RecordId::derived(
                            "mv",
                            &[move_id.as_str(), &n.to_string()],
                        );
                        wallet::move_allowance(doc, &wallet_id, &id, &owner, payer, amount, at)?;
                        moved += 1;
                    }
                }
                Ok::<_, wallet::WalletError>(moved)
            })?;
            for _ in 0..moved.map_err(SimError::Internal)? {
                self.metrics.count("allowance_refills");
            }
        }
        Ok(())
    }
}
