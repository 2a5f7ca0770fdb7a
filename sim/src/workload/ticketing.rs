//! Tickets: passes sold on the mainland and checked at the port's gate, passes sold at the
//! port with an attraction entry delegated to the attraction's box, and injected double
//! uses of a delegated right.

use std::collections::BTreeMap;

use crdt_model::records::store;
use crdt_model::records::tickets::{self, Entitlement, EntitlementKind, Holder, Pass};
use crdt_model::records::values::{IdCard, IdDocument, NodeRef, PersonName, RecordId, Vnd};
use provisioning::policy::Role;

use super::{HOUR_MS, PassInfo, Work, doc_key, internal, rid};
use crate::SimError;
use crate::world::{Event, Micros, SECOND, World};

impl World {
    pub(super) fn port(&self) -> Option<usize> {
        self.boxes_with(&[Role::Port]).into_iter().next()
    }

    pub(super) fn new_pass(
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
    pub(super) fn hub_sale(&mut self, sailing: usize) -> Result<(), SimError> {
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
    pub(super) fn arrival(&mut self, sailing: usize) {
        let passengers = self.work.sailings[sailing].clone();
        for (n, pass) in passengers.into_iter().enumerate() {
            let at = self.now + 60 * SECOND + 3 * SECOND * n as Micros;
            self.schedule(at, Event::Work(Work::Gate { pass }));
        }
    }

    /// The port's gate checks one passenger's pass.
    pub(super) fn gate(&mut self, index: usize) -> Result<(), SimError> {
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
    pub(super) fn island_sale(&mut self) -> Result<(), SimError> {
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

    pub(super) fn redeem_visit(
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
    pub(super) fn visit(&mut self) -> Result<(), SimError> {
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
    pub(super) fn double_use(&mut self) -> Result<(), SimError> {
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
}
