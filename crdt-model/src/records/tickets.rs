//! Passes and tickets (scope `tickets`): one electronic pass per person holding entitlements
//! (a ferry trip, an attraction entry, port entry and exit), sold, refunded, transferred and
//! expiring; every use at a gate a redemption record; sailings whose seats are quotas.
//!
//! The redemption right of an entitlement belongs to one node (`right`, the port box for a
//! ferry boarding). That node may hand it to one delegate and take it back; only the node
//! that holds the right in its own view may redeem. Redemptions live at
//! `ROOT.redemptions.<pass>.<entitlement>.<redemption>`, one map per use, never overwritten,
//! so a use recorded offline by two holders (the owner took the right back while its
//! delegate was cut off) survives the merge as two records, and [`conflicts`] reports it on
//! every replica alike until staff [`resolve`] it.

use std::collections::{BTreeMap, BTreeSet};

use automerge::{AutoCommit, ROOT};

use super::escrow::{self, EscrowError, Ledger, LedgerAt, Totals};
use super::store::{
    self, Fields, MapReader, MapWriter, Record, Scope, StoreError, child_map, tag_enum,
};
use super::values::{
    IdDocument, InputError, NodeRef, PersonName, Phone, RecordId, Text, Timestamp, Vnd,
};

tag_enum! {
    /// The seat classes a sailing sells.
    pub enum SeatClass {
        Economy = "economy",
        Business = "business",
        Vip = "vip",
    }
}

tag_enum! {
    /// What a conflict record reports.
    pub enum ConflictKind {
        /// More uses than the entitlement allows.
        OverUsed = "over-used",
        /// Used although it was refunded (the refund and the use happened apart).
        UsedAfterRefund = "used-after-refund",
    }
}

tag_enum! {
    /// How staff settled a conflict.
    pub enum Decision {
        /// The holder pays for the extra use.
        ChargeHolder = "charge-holder",
        /// The extra use is accepted at the operator's cost.
        Waive = "waive",
        /// The extra uses are void (a scanning error, a duplicate scan).
        VoidExcess = "void-excess",
    }
}

/// A pass or sailing operation that the records or their rules refuse.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TicketError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Escrow(#[from] EscrowError),
    #[error("pass {pass} has no entitlement {entitlement}")]
    NoEntitlement {
        pass: RecordId,
        entitlement: RecordId,
    },
    #[error("{node} does not hold the redemption right of {entitlement}; {holder} does")]
    NotRightHolder {
        entitlement: RecordId,
        node: NodeRef,
        holder: NodeRef,
    },
    #[error("only {owner}, owner of the right of {entitlement}, may delegate it; {node} asked")]
    NotRightOwner {
        entitlement: RecordId,
        node: NodeRef,
        owner: NodeRef,
    },
    #[error("{entitlement} has been used {uses} time(s), all it allows")]
    UsedUp { entitlement: RecordId, uses: usize },
    #[error("{entitlement} was refunded")]
    Refunded { entitlement: RecordId },
    #[error("{entitlement} is valid only from {from:?}")]
    NotYetValid {
        entitlement: RecordId,
        from: Timestamp,
    },
    #[error("{entitlement} expired at {until:?}")]
    Expired {
        entitlement: RecordId,
        until: Timestamp,
    },
    #[error("only the issuer {issuer} may transfer pass {pass}; {node} asked")]
    NotIssuer {
        pass: RecordId,
        node: NodeRef,
        issuer: NodeRef,
    },
    #[error("pass {pass} has been used and can no longer be transferred")]
    Used { pass: RecordId },
    #[error("redemption {id} already exists")]
    DuplicateRedemption { id: RecordId },
    #[error("{entitlement} is delegated to {delegate}; take the right back before refunding")]
    Delegated {
        entitlement: RecordId,
        delegate: NodeRef,
    },
    #[error("sailing {sailing} of entitlement {entitlement} is not in this document")]
    NoSailing {
        entitlement: RecordId,
        sailing: RecordId,
    },
}

/// The person a pass belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub name: PersonName,
    pub document: IdDocument,
    pub phone: Option<Phone>,
    /// A resident of the district (as opposed to a visitor): counts apart in statistics.
    pub resident: bool,
}

impl Fields for Holder {
    fn write(&self, w: &mut MapWriter<'_>) -> Result<(), StoreError> {
        w.put("name", &self.name)?;
        w.put("document", &self.document)?;
        w.put("phone", &self.phone)?;
        w.put("resident", &self.resident)
    }

    fn read(r: &MapReader<'_>) -> Result<Self, StoreError> {
        Ok(Self {
            name: r.get("name")?,
            document: r.get("document")?,
            phone: r.get("phone")?,
            resident: r.get("resident")?,
        })
    }
}

/// What an entitlement lets its holder do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntitlementKind {
    FerryTrip {
        route: RecordId,
        sailing: RecordId,
        seat_class: SeatClass,
    },
    AttractionEntry {
        attraction: RecordId,
    },
    PortEntry,
    PortExit,
}

impl EntitlementKind {
    pub fn tag(&self) -> &'static str {
        match self {
            Self::FerryTrip { .. } => "ferry",
            Self::AttractionEntry { .. } => "attraction",
            Self::PortEntry => "port-entry",
            Self::PortExit => "port-exit",
        }
    }
}

/// A refund of one entitlement, decided by the owner of its redemption right.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    pub at: Timestamp,
    pub by: NodeRef,
    pub amount: Vnd,
}

impl Fields for Refund {
    fn write(&self, w: &mut MapWriter<'_>) -> Result<(), StoreError> {
        w.put("at", &self.at)?;
        w.put("by", &self.by)?;
        w.put("amount", &self.amount)
    }

    fn read(r: &MapReader<'_>) -> Result<Self, StoreError> {
        Ok(Self {
            at: r.get("at")?,
            by: r.get("by")?,
            amount: r.get("amount")?,
        })
    }
}

/// One thing a pass allows, with the node that may redeem it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entitlement {
    pub kind: EntitlementKind,
    pub valid_from: Timestamp,
    pub valid_until: Timestamp,
    /// How many times it may be used; 1 for a single-use ticket.
    pub max_uses: u32,
    /// The node that owns the redemption right.
    pub right: NodeRef,
    /// The node the owner handed the right to, if any; while set, only it may redeem.
    pub delegate: Option<NodeRef>,
    pub refund: Option<Refund>,
}

impl Entitlement {
    pub fn new(
        kind: EntitlementKind,
        valid_from: Timestamp,
        valid_until: Timestamp,
        max_uses: u32,
        right: NodeRef,
    ) -> Result<Self, InputError> {
        if valid_until <= valid_from {
            let value = format!("{}..{}", valid_from.millis(), valid_until.millis());
            let reason = "ms: the window must end after it starts";
            return Err(InputError::Range {
                field: "valid_until",
                value,
                reason,
            });
        }
        if max_uses == 0 {
            let reason = "must allow at least one use";
            return Err(InputError::Number {
                field: "max_uses",
                value: 0,
                reason,
            });
        }
        Ok(Self {
            kind,
            valid_from,
            valid_until,
            max_uses,
            right,
            delegate: None,
            refund: None,
        })
    }

    /// The node that may redeem now: the delegate if there is one, else the owner.
    pub fn right_holder(&self) -> &NodeRef {
        self.delegate.as_ref().unwrap_or(&self.right)
    }
}

impl Fields for Entitlement {
    fn write(&self, w: &mut MapWriter<'_>) -> Result<(), StoreError> {
        let (route, sailing, class, attraction) = match &self.kind {
            EntitlementKind::FerryTrip {
                route,
                sailing,
                seat_class,
            } => (Some(route), Some(sailing), Some(*seat_class), None),
            EntitlementKind::AttractionEntry { attraction } => (None, None, None, Some(attraction)),
            EntitlementKind::PortEntry | EntitlementKind::PortExit => (None, None, None, None),
        };
        w.put("kind", &self.kind.tag().to_owned())?;
        w.put("route", &route.cloned())?;
        w.put("sailing", &sailing.cloned())?;
        w.put("class", &class)?;
        w.put("attraction", &attraction.cloned())?;
        w.put("from", &self.valid_from)?;
        w.put("until", &self.valid_until)?;
        w.put("max_uses", &self.max_uses)?;
        w.put("right", &self.right)?;
        w.put("delegate", &self.delegate)?;
        w.nested_opt("refund", self.refund.as_ref())
    }

    fn read(r: &MapReader<'_>) -> Result<Self, StoreError> {
        let tag: String = r.get("kind")?;
        let kind = match tag.as_str() {
            "ferry" => EntitlementKind::FerryTrip {
                route: r.get("route")?,
                sailing: r.get("sailing")?,
                seat_class: r.get("class")?,
            },
            "attraction" => EntitlementKind::AttractionEntry {
                attraction: r.get("attraction")?,
            },
            "port-entry" => EntitlementKind::PortEntry,
            "port-exit" => EntitlementKind::PortExit,
            _ => {
                let allowed = "ferry attraction port-entry port-exit";
                let field = "kind";
                return Err(r.invalid(InputError::Choice {
                    field,
                    value: tag,
                    allowed,
                }));
            }
        };
        Ok(Self {
            kind,
            valid_from: r.get("from")?,
            valid_until: r.get("until")?,
            max_uses: r.get("max_uses")?,
            right: r.get("right")?,
            delegate: r.get("delegate")?,
            refund: r.nested_opt("refund")?,
        })
    }
}

/// An electronic pass: one per person, holding their entitlements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pass {
    pub id: RecordId,
    pub holder: Holder,
    /// The node that sold the pass; the only one that may transfer it.
    pub issuer: NodeRef,
    pub sold_at: Timestamp,
    pub price: Vnd,
    pub entitlements: BTreeMap<RecordId, Entitlement>,
    pub transferred_at: Option<Timestamp>,
}

impl Record for Pass {
    const SCOPE: Scope = Scope::Tickets;
    const COLLECTION: &'static str = "passes";

    fn id(&self) -> &RecordId {
        &self.id
    }
}

impl Fields for Pass {
    fn write(&self, w: &mut MapWriter<'_>) -> Result<(), StoreError> {
        w.put("id", &self.id)?;
        w.nested("holder", &self.holder)?;
        w.put("issuer", &self.issuer)?;
        w.put("sold_at", &self.sold_at)?;
        w.put("price", &self.price)?;
        w.items("entitlements", &self.entitlements)?;
        w.put("transferred_at", &self.transferred_at)
    }

    fn read(r: &MapReader<'_>) -> Result<Self, StoreError> {
        Ok(Self {
            id: r.get("id")?,
            holder: r.nested("holder")?,
            issuer: r.get("issuer")?,
            sold_at: r.get("sold_at")?,
            price: r.get("price")?,
            entitlements: r.items("entitlements")?,
            transferred_at: r.get("transferred_at")?,
        })
    }
}

/// A ferry sailing; its seats per class are a ledger owned by the operator's node, which
/// delegates seat quotas to the boxes that sell tickets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sailing {
    pub id: RecordId,
    pub route: RecordId,
    pub vessel: Text,
    pub departs_at: Timestamp,
    /// The node that owns the seats and decides the quotas.
    pub operator: NodeRef,
}

impl Record for Sailing {
    const SCOPE: Scope = Scope::Tickets;
    const COLLECTION: &'static str = "sailings";

    fn id(&self) -> &RecordId {
        &self.id
    }
}

impl Fields for Sailing {
    fn write(&self, w: &mut MapWriter<'_>) -> Result<(), StoreError> {
        w.put("id", &self.id)?;
        w.put("route", &self.route)?;
        w.put("vessel", &self.vessel)?;
        w.put("departs_at", &self.departs_at)?;
        w.put("operator", &self.operator)
    }

    fn read(r: &MapReader<'_>) -> Result<Self, StoreError> {
        Ok(Self {
            id: r.get("id")?,
            route: r.get("route")?,
            vessel: r.get("vessel")?,
            departs_at: r.get("departs_at")?,
            operator: r.get("operator")?,
        })
    }
}

/// One use of an entitlement at a gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redemption {
    pub node: NodeRef,
    pub gate: RecordId,
    /// The staff member or device that scanned the pass.
    pub by: RecordId,
    pub at: Timestamp,
}

impl Fields for Redemption {
    fn write(&self, w: &mut MapWriter<'_>) -> Result<(), StoreError> {
        w.put("node", &self.node)?;
        w.put("gate", &self.gate)?;
        w.put("by", &self.by)?;
        w.put("at", &self.at)
    }

    fn read(r: &MapReader<'_>) -> Result<Self, StoreError> {
        Ok(Self {
            node: r.get("node")?,
            gate: r.get("gate")?,
            by: r.get("by")?,
            at: r.get("at")?,
        })
    }
}

/// Staff's settlement of a conflict, covering the uses they saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    pub decision: Decision,
    pub by: RecordId,
    pub node: NodeRef,
    pub at: Timestamp,
    pub note: Option<Text>,
    /// The redemptions the decision was taken over; a use that arrives later reopens it.
    pub covers: BTreeSet<RecordId>,
}

impl Fields for Resolution {
    fn write(&self, w: &mut MapWriter<'_>) -> Result<(), StoreError> {
        w.put("decision", &self.decision)?;
        w.put("by", &self.by)?;
        w.put("node", &self.node)?;
        w.put("at", &self.at)?;
        w.put("note", &self.note)?;
        w.set("covers", &self.covers)
    }

    fn read(r: &MapReader<'_>) -> Result<Self, StoreError> {
        Ok(Self {
            decision: r.get("decision")?,
            by: r.get("by")?,
            node: r.get("node")?,
            at: r.get("at")?,
            note: r.get("note")?,
            covers: r.set("covers")?,
        })
    }
}

/// An entitlement used more than it allows, or used although refunded, as every replica
/// holding the same records computes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedemptionConflict {
    /// Derived from pass and entitlement, so every replica names it alike.
    pub id: RecordId,
    pub pass: RecordId,
    pub entitlement: RecordId,
    pub kind: ConflictKind,
    pub max_uses: u32,
    /// Every use, earliest first (ties broken by node, then redemption id).
    pub uses: Vec<(RecordId, Redemption)>,
    pub resolution: Option<Resolution>,
}

impl RedemptionConflict {
    /// Whether staff still have to look at it: unresolved, or uses arrived since.
    pub fn is_open(&self) -> bool {
        let seen: BTreeSet<&RecordId> = self.uses.iter().map(|(id, _)| id).collect();
        match &self.resolution {
            None => true,
            Some(resolution) => resolution.covers.iter().collect::<BTreeSet<_>>() != seen,
        }
    }

    /// The uses beyond those allowed, latest last.
    pub fn excess(&self) -> &[(RecordId, Redemption)] {
        let allowed = match self.kind {
            ConflictKind::OverUsed => usize::try_from(self.max_uses).unwrap_or(usize::MAX),
            ConflictKind::UsedAfterRefund => 0,
        };
        &self.uses[allowed.min(self.uses.len())..]
    }
}

/// Where an entitlement stands at an instant, as one replica sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntitlementState {
    NotYetValid,
    Valid { uses_left: u32 },
    UsedUp,
    Expired,
    Refunded,
}

fn seat_ledger<'a>(sailing: &'a RecordId, class: &'a SeatClass) -> LedgerAt<'a> {
    LedgerAt {
        collection: Sailing::COLLECTION,
        record: sailing,
        slot: class.tag(),
    }
}

/// Creates a sailing with its seats, credited to the operator, who then delegates quotas.
pub fn create_sailing(
    doc: &mut AutoCommit,
    sailing: &Sailing,
    seats: &[(SeatClass, u32)],
) -> Result<(), TicketError> {
    store::insert(doc, sailing)?;
    for (class, count) in seats {
        let at = seat_ledger(&sailing.id, class);
        escrow::create_ledger(doc, at)?;
        let entry = escrow::Entry {
            node: sailing.operator.clone(),
            amount: u64::from(*count),
            at: sailing.departs_at,
            kind: "capacity".to_owned(),
            reference: None,
        };
        let id = RecordId::derived("cap", &[sailing.id.as_str(), class.tag()]);
        escrow::credit(doc, at, &id, &entry)?;
    }
    Ok(())
}

/// Hands seats of a class from `mv.from`'s quota to `mv.to`'s (the operator delegating a
/// quota to a commune office, or an office returning one).
pub fn move_seats(
    doc: &mut AutoCommit,
    sailing: &RecordId,
    class: SeatClass,
    id: &RecordId,
    mv: &escrow::Move,
) -> Result<(), TicketError> {
    store::fetch::<Sailing>(doc, sailing)?;
    escrow::move_share(doc, seat_ledger(sailing, &class), id, mv)?;
    Ok(())
}

/// The seats of a class that `node` may still sell, and those left on the sailing.
pub fn seats(
    doc: &AutoCommit,
    sailing: &RecordId,
    class: SeatClass,
    node: &NodeRef,
) -> Result<(i128, i128), TicketError> {
    let ledger = Ledger::load(doc, seat_ledger(sailing, &class))?;
    Ok((ledger.share(node), ledger.total()))
}

/// Sells a pass at `seller`: every ferry trip takes a seat from the seller's quota for that
/// sailing, so a sailing is never sold beyond its seats whatever the partitions.
pub fn sell(doc: &mut AutoCommit, pass: &Pass, seller: &NodeRef) -> Result<(), TicketError> {
    if pass.entitlements.is_empty() {
        let reason = "a pass needs at least one entitlement";
        return Err(InputError::Number {
            field: "entitlements",
            value: 0,
            reason,
        }
        .into());
    }

    let mut wanted: BTreeMap<(RecordId, SeatClass), u64> = BTreeMap::new();
    for (id, entitlement) in &pass.entitlements {
        if let EntitlementKind::FerryTrip {
            sailing,
            seat_class,
            ..
        } = &entitlement.kind
        {
            if store::get::<Sailing>(doc, sailing)?.is_none() {
                let (entitlement, sailing) = (id.clone(), sailing.clone());
                return Err(TicketError::NoSailing {
                    entitlement,
                    sailing,
                });
            }
            *wanted.entry((sailing.clone(), *seat_class)).or_default() += 1;
        }
    }
    for ((sailing, class), count) in &wanted {
        let available = Totals::load(doc, seat_ledger(sailing, class))?.share(seller);
        if available < i128::from(*count) {
            let node = seller.clone();
            return Err(EscrowError::Insufficient {
                node,
                available,
                amount: *count,
            }
            .into());
        }
    }

    store::insert(doc, pass)?;
    for (id, entitlement) in &pass.entitlements {
        // The uses map exists from the sale on, so first uses at two gates share it.
        let redemptions = child_map(doc, &ROOT, "redemptions")?;
        let by_pass = child_map(doc, &redemptions, pass.id.as_str())?;
        child_map(doc, &by_pass, id.as_str())?;

        if let EntitlementKind::FerryTrip {
            sailing,
            seat_class,
            ..
        } = &entitlement.kind
        {
            let entry = escrow::Entry {
                node: seller.clone(),
                amount: 1,
                at: pass.sold_at,
                kind: "sale".to_owned(),
                reference: Some(pass.id.clone()),
            };
            let debit_id = RecordId::derived("seat", &[pass.id.as_str(), id.as_str()]);
            escrow::debit(doc, seat_ledger(sailing, seat_class), &debit_id, &entry)?;
        }
    }
    Ok(())
}

/// Every use of one entitlement, keyed by redemption id.
pub fn uses(
    doc: &AutoCommit,
    pass: &RecordId,
    entitlement: &RecordId,
) -> Result<BTreeMap<RecordId, Redemption>, TicketError> {
    let root = MapReader::root(doc, "redemptions");
    match root.path(&["redemptions", pass.as_str(), entitlement.as_str()])? {
        Some(map) => Ok(map.children()?),
        None => Ok(BTreeMap::new()),
    }
}

fn entitlement_of(pass: &Pass, id: &RecordId) -> Result<Entitlement, TicketError> {
    pass.entitlements
        .get(id)
        .cloned()
        .ok_or_else(|| TicketError::NoEntitlement {
            pass: pass.id.clone(),
            entitlement: id.clone(),
        })
}

/// Where an entitlement stands at `at` in this replica's view.
pub fn state(entitlement: &Entitlement, uses: usize, at: Timestamp) -> EntitlementState {
    let used = u32::try_from(uses).unwrap_or(u32::MAX);
    if entitlement.refund.is_some() {
        EntitlementState::Refunded
    } else if used >= entitlement.max_uses {
        EntitlementState::UsedUp
    } else if at < entitlement.valid_from {
        EntitlementState::NotYetValid
    } else if at >= entitlement.valid_until {
        EntitlementState::Expired
    } else {
        EntitlementState::Valid {
            uses_left: entitlement.max_uses - used,
        }
    }
}

/// Validates and records one use of an entitlement at a gate of `redemption.node`.
///
/// Refused unless that node holds the redemption right in this replica's view, the
/// entitlement is within its window, not refunded and not used up here.
pub fn redeem(
    doc: &mut AutoCommit,
    pass_id: &RecordId,
    entitlement_id: &RecordId,
    id: &RecordId,
    redemption: &Redemption,
) -> Result<(), TicketError> {
    let pass: Pass = store::fetch(doc, pass_id)?;
    let entitlement = entitlement_of(&pass, entitlement_id)?;
    let holder = entitlement.right_holder();
    if holder != &redemption.node {
        return Err(TicketError::NotRightHolder {
            entitlement: entitlement_id.clone(),
            node: redemption.node.clone(),
            holder: holder.clone(),
        });
    }

    let previous = uses(doc, pass_id, entitlement_id)?;
    if previous.contains_key(id) {
        return Err(TicketError::DuplicateRedemption { id: id.clone() });
    }
    let key = entitlement_id.clone();
    let refused = match state(&entitlement, previous.len(), redemption.at) {
        EntitlementState::Valid { .. } => None,
        EntitlementState::Refunded => Some(TicketError::Refunded { entitlement: key }),
        EntitlementState::UsedUp => Some(TicketError::UsedUp {
            entitlement: key,
            uses: previous.len(),
        }),
        EntitlementState::NotYetValid => Some(TicketError::NotYetValid {
            entitlement: key,
            from: entitlement.valid_from,
        }),
        EntitlementState::Expired => Some(TicketError::Expired {
            entitlement: key,
            until: entitlement.valid_until,
        }),
    };
    if let Some(refused) = refused {
        return Err(refused);
    }

    let redemptions = child_map(doc, &ROOT, "redemptions")?;
    let by_pass = child_map(doc, &redemptions, pass_id.as_str())?;
    let by_entitlement = child_map(doc, &by_pass, entitlement_id.as_str())?;
    let obj = child_map(doc, &by_entitlement, id.as_str())?;
    redemption.write(&mut MapWriter::new(doc, obj, "redemptions"))?;
    Ok(())
}

/// Hands the redemption right of an entitlement to `to`, or takes it back (`None`). Only
/// the right's owner may. Taking it back while the delegate is cut off is allowed (the
/// owner decides), and is how a double use can still happen: [`conflicts`] reports it.
pub fn delegate(
    doc: &mut AutoCommit,
    pass_id: &RecordId,
    entitlement_id: &RecordId,
    by: &NodeRef,
    to: Option<&NodeRef>,
) -> Result<(), TicketError> {
    let mut pass: Pass = store::fetch(doc, pass_id)?;
    let mut entitlement = entitlement_of(&pass, entitlement_id)?;
    if &entitlement.right != by {
        return Err(TicketError::NotRightOwner {
            entitlement: entitlement_id.clone(),
            node: by.clone(),
            owner: entitlement.right.clone(),
        });
    }

    entitlement.delegate = to.filter(|to| *to != by).cloned();
    pass.entitlements
        .insert(entitlement_id.clone(), entitlement);
    store::put(doc, &pass)?;
    Ok(())
}

/// Refunds an unused entitlement; decided by the owner of its redemption right, which must
/// not have delegated it. A ferry seat goes back to the refunding node's quota.
pub fn refund(
    doc: &mut AutoCommit,
    pass_id: &RecordId,
    entitlement_id: &RecordId,
    refund: Refund,
) -> Result<(), TicketError> {
    let mut pass: Pass = store::fetch(doc, pass_id)?;
    let mut entitlement = entitlement_of(&pass, entitlement_id)?;
    let entitlement_key = entitlement_id.clone();
    if entitlement.right != refund.by {
        return Err(TicketError::NotRightOwner {
            entitlement: entitlement_key,
            node: refund.by.clone(),
            owner: entitlement.right.clone(),
        });
    }
    if let Some(delegate) = &entitlement.delegate {
        let delegate = delegate.clone();
        return Err(TicketError::Delegated {
            entitlement: entitlement_key,
            delegate,
        });
    }
    let used = uses(doc, pass_id, entitlement_id)?.len();
    if used > 0 {
        return Err(TicketError::UsedUp {
            entitlement: entitlement_key,
            uses: used,
        });
    }
    if entitlement.refund.is_some() {
        return Err(TicketError::Refunded {
            entitlement: entitlement_key,
        });
    }

    if let EntitlementKind::FerryTrip {
        sailing,
        seat_class,
        ..
    } = &entitlement.kind
    {
        let entry = escrow::Entry {
            node: refund.by.clone(),
            amount: 1,
            at: refund.at,
            kind: "refund".to_owned(),
            reference: Some(pass.id.clone()),
        };
        let id = RecordId::derived("back", &[pass.id.as_str(), entitlement_id.as_str()]);
        escrow::credit(doc, seat_ledger(sailing, seat_class), &id, &entry)?;
    }
    entitlement.refund = Some(refund);
    pass.entitlements
        .insert(entitlement_id.clone(), entitlement);
    store::put(doc, &pass)?;
    Ok(())
}

/// Transfers an unused pass to another person; only its issuer may.
pub fn transfer(
    doc: &mut AutoCommit,
    pass_id: &RecordId,
    by: &NodeRef,
    to: Holder,
    at: Timestamp,
) -> Result<(), TicketError> {
    let mut pass: Pass = store::fetch(doc, pass_id)?;
    if &pass.issuer != by {
        let (node, issuer) = (by.clone(), pass.issuer.clone());
        return Err(TicketError::NotIssuer {
            pass: pass_id.clone(),
            node,
            issuer,
        });
    }
    for entitlement in pass.entitlements.keys() {
        if !uses(doc, pass_id, entitlement)?.is_empty() {
            return Err(TicketError::Used {
                pass: pass_id.clone(),
            });
        }
    }

    pass.holder = to;
    pass.transferred_at = Some(at);
    store::put(doc, &pass)?;
    Ok(())
}

/// Every conflict in the document, in (pass, entitlement) order. A pure function of the
/// records: two replicas holding the same records return the same list.
pub fn conflicts(doc: &AutoCommit) -> Result<Vec<RedemptionConflict>, TicketError> {
    let root = MapReader::root(doc, "redemptions");
    let Some(all) = root.map("redemptions")? else {
        return Ok(Vec::new());
    };
    let resolutions = root.map("resolutions")?;

    // Cheap first pass: count uses per entitlement and read only the two fields that decide
    // whether they collide; full records are read only for the conflicts found.
    let passes = root.map(Pass::COLLECTION)?;
    let mut found = Vec::new();
    for pass_key in all.keys() {
        let pass_id = all.id(&pass_key)?;
        let Some(by_entitlement) = all.map(&pass_key)? else {
            continue;
        };
        for entitlement_key in by_entitlement.keys() {
            let used = match by_entitlement.map(&entitlement_key)? {
                Some(map) => map.keys().len(),
                None => 0,
            };
            if used == 0 {
                continue;
            }
            let path = [pass_key.as_str(), "entitlements", entitlement_key.as_str()];
            let Some(entitlement) = passes
                .as_ref()
                .map(|p| p.path(&path))
                .transpose()?
                .flatten()
            else {
                continue;
            };
            let max_uses: u32 = entitlement.get("max_uses")?;
            let refunded = entitlement.map("refund")?.is_some();
            let over = used > usize::try_from(max_uses).unwrap_or(usize::MAX);
            let kind = match (over, refunded) {
                (_, true) => ConflictKind::UsedAfterRefund,
                (true, false) => ConflictKind::OverUsed,
                (false, false) => continue,
            };

            let entitlement_id = all.id(&entitlement_key)?;
            let mut ordered: Vec<(RecordId, Redemption)> =
                uses(doc, &pass_id, &entitlement_id)?.into_iter().collect();
            ordered
                .sort_by(|(a_id, a), (b_id, b)| (a.at, &a.node, a_id).cmp(&(b.at, &b.node, b_id)));
            let id = RecordId::derived("conflict", &[pass_id.as_str(), entitlement_id.as_str()]);
            let resolution = match &resolutions {
                Some(map) => map.nested_opt(id.as_str())?,
                None => None,
            };
            found.push(RedemptionConflict {
                id,
                pass: pass_id.clone(),
                entitlement: entitlement_id,
                kind,
                max_uses,
                uses: ordered,
                resolution,
            });
        }
    }
    Ok(found)
}

/// Records staff's decision on a conflict; it covers the uses the conflict lists now, and
/// a use that arrives later reopens it.
pub fn resolve(
    doc: &mut AutoCommit,
    conflict: &RedemptionConflict,
    mut resolution: Resolution,
) -> Result<(), TicketError> {
    resolution.covers = conflict.uses.iter().map(|(id, _)| id.clone()).collect();
    let resolutions = child_map(doc, &ROOT, "resolutions")?;
    let obj = child_map(doc, &resolutions, conflict.id.as_str())?;
    resolution.write(&mut MapWriter::new(doc, obj, "resolutions"))?;
    Ok(())
}
