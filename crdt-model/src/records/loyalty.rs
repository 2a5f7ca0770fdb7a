//! Loyalty offers (scope `bookings`) shared by a chain of businesses: stamps collected at
//! any business of the chain, and offers redeemed against stamps with a cap on redemptions.
//!
//! The cap is an [`escrow`](super::escrow) ledger owned by the chain's node, which delegates
//! redemption quotas to the businesses' boxes; a box redeems only within its quota, so the
//! cap holds under partition. Stamps are append-only records; a customer's spendable stamps
//! are checked in the redeeming box's view only, so two boxes cut off from each other may
//! both spend the same stamps: [`stamp_balance`] then goes negative, visibly, and never
//! silently hides a redemption. (Escrowing stamps per customer would close that gap at the
//! cost of a ledger per customer; the cap was the rule asked for.)

use std::collections::BTreeSet;

use automerge::AutoCommit;

use super::escrow::{self, EscrowError, Ledger, LedgerAt};
use super::store::{self, Fields, MapReader, MapWriter, Record, Scope, StoreError};
use super::values::{InputError, NodeRef, RecordId, Text, Timestamp};

/// A loyalty operation that the records or their rules refuse.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoyaltyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Escrow(#[from] EscrowError),
    #[error("business {business} is not part of offer {offer}")]
    NotInChain { offer: RecordId, business: RecordId },
    #[error("customer {customer} holds {held} stamp(s); offer {offer} needs {needed}")]
    NotEnoughStamps {
        offer: RecordId,
        customer: RecordId,
        held: i64,
        needed: u32,
    },
    #[error("offer {offer} ended at {until:?}")]
    Ended { offer: RecordId, until: Timestamp },
}

/// An offer of a chain of businesses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    pub id: RecordId,
    pub chain: RecordId,
    pub title: Text,
    pub businesses: BTreeSet<RecordId>,
    pub stamps_required: u32,
    pub valid_until: Timestamp,
    /// The chain's node: holds the cap and delegates quotas.
    pub owner: NodeRef,
}

impl Record for Offer {
    const SCOPE: Scope = Scope::Bookings;
    const COLLECTION: &'static str = "offers";

    fn id(&self) -> &RecordId {
        &self.id
    }
}

impl Fields for Offer {
    fn write(&self, w: &mut MapWriter<'_>) -> Result<(), StoreError> {
        w.put("id", &self.id)?;
        w.put("chain", &self.chain)?;
        w.put("title", &self.title)?;
        w.set("businesses", &self.businesses)?;
        w.put("stamps_required", &self.stamps_required)?;
        w.put("valid_until", &self.valid_until)?;
        w.put("owner", &self.owner)
    }

    fn read(r: &MapReader<'_>) -> Result<Self, StoreError> {
        Ok(Self {
            id: r.get("id")?,
            chain: r.get("chain")?,
            title: r.get("title")?,
            businesses: r.set("businesses")?,
            stamps_required: r.get("stamps_required")?,
            valid_until: r.get("valid_until")?,
            owner: r.get("owner")?,
        })
    }
}

/// A stamp given to a customer at a business of the offer's chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    pub id: RecordId,
    pub offer: RecordId,
    pub customer: RecordId,
    pub business: RecordId,
    pub node: NodeRef,
    pub at: Timestamp,
}

impl Record for Stamp {
    const SCOPE: Scope = Scope::Bookings;
    const COLLECTION: &'static str = "stamps";

    fn id(&self) -> &RecordId {
        &self.id
    }
}

impl Fields for Stamp {
    fn write(&self, w: &mut MapWriter<'_>) -> Result<(), StoreError> {
        w.put("id", &self.id)?;
        w.put("offer", &self.offer)?;
        w.put("customer", &self.customer)?;
        w.put("business", &self.business)?;
        w.put("node", &self.node)?;
        w.put("at", &self.at)
    }

    fn read(r: &MapReader<'_>) -> Result<Self, StoreError> {
        Ok(Self {
            id: r.get("id")?,
            offer: r.get("offer")?,
            customer: r.get("customer")?,
            business: r.get("business")?,
            node: r.get("node")?,
            at: r.get("at")?,
        })
    }
}

fn cap_ledger(offer: &RecordId) -> LedgerAt<'_> {
    LedgerAt {
        collection: Offer::COLLECTION,
        record: offer,
        slot: "cap",
    }
}

/// Creates an offer whose `cap` redemptions are held by its owner.
pub fn create(doc: &mut AutoCommit, offer: &Offer, cap: u32) -> Result<(), LoyaltyError> {
    store::insert(doc, offer)?;
    escrow::create_ledger(doc, cap_ledger(&offer.id))?;
    let entry = escrow::Entry {
        node: offer.owner.clone(),
        amount: u64::from(cap),
        at: offer.valid_until,
        kind: "cap".to_owned(),
        reference: None,
    };
    escrow::credit(
        doc,
        cap_ledger(&offer.id),
        &RecordId::derived("cap", &[offer.id.as_str()]),
        &entry,
    )?;
    Ok(())
}

/// Hands part of `mv.from`'s redemption quota to `mv.to`.
pub fn move_quota(
    doc: &mut AutoCommit,
    offer: &RecordId,
    id: &RecordId,
    mv: &escrow::Move,
) -> Result<(), LoyaltyError> {
    store::fetch::<Offer>(doc, offer)?;
    escrow::move_share(doc, cap_ledger(offer), id, mv)?;
    Ok(())
}

/// Gives a stamp at a business of the chain.
pub fn stamp(doc: &mut AutoCommit, stamp: &Stamp) -> Result<(), LoyaltyError> {
    let offer: Offer = store::fetch(doc, &stamp.offer)?;
    if !offer.businesses.contains(&stamp.business) {
        let (offer, business) = (offer.id, stamp.business.clone());
        return Err(LoyaltyError::NotInChain { offer, business });
    }
    store::insert(doc, stamp)?;
    Ok(())
}

/// Stamps a customer holds on an offer minus those spent on redemptions. Negative only when
/// partitioned boxes spent the same stamps.
pub fn stamp_balance(
    doc: &AutoCommit,
    offer: &Offer,
    customer: &RecordId,
) -> Result<i64, LoyaltyError> {
    let stamps: Vec<Stamp> = store::list(doc)?;
    let held = stamps
        .iter()
        .filter(|s| s.offer == offer.id && &s.customer == customer)
        .count();
    let ledger = Ledger::load(doc, cap_ledger(&offer.id))?;
    let redeemed = ledger
        .debits
        .values()
        .filter(|d| d.reference.as_ref() == Some(customer))
        .count();
    let held = i64::try_from(held).unwrap_or(i64::MAX);
    let spent = i64::try_from(redeemed)
        .unwrap_or(i64::MAX)
        .saturating_mul(i64::from(offer.stamps_required));
    Ok(held - spent)
}

/// Redeems the offer for a customer at `node`: within the node's quota of the cap, and
/// against the customer's stamps as this replica sees them.
pub fn redeem(
    doc: &mut AutoCommit,
    offer_id: &RecordId,
    id: &RecordId,
    customer: &RecordId,
    node: &NodeRef,
    at: Timestamp,
) -> Result<(), LoyaltyError> {
    let offer: Offer = store::fetch(doc, offer_id)?;
    if at >= offer.valid_until {
        return Err(LoyaltyError::Ended {
            offer: offer.id,
            until: offer.valid_until,
        });
    }
    let held = stamp_balance(doc, &offer, customer)?;
    if held < i64::from(offer.stamps_required) {
        let needed = offer.stamps_required;
        let customer = customer.clone();
        return Err(LoyaltyError::NotEnoughStamps {
            offer: offer.id,
            customer,
            held,
            needed,
        });
    }

    let entry = escrow::Entry {
        node: node.clone(),
        amount: 1,
        at,
        kind: "redemption".to_owned(),
        reference: Some(customer.clone()),
    };
    escrow::debit(doc, cap_ledger(offer_id), id, &entry)?;
    Ok(())
}

/// Redemptions left under the cap, and how many `node` may still make.
pub fn remaining(
    doc: &AutoCommit,
    offer: &RecordId,
    node: &NodeRef,
) -> Result<(i128, i128), LoyaltyError> {
    let ledger = Ledger::load(doc, cap_ledger(offer))?;
    Ok((ledger.total(), ledger.share(node)))
}
