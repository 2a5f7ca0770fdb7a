//! The card's wallet (scope `cards`): cashless payments in VND (medical fees, tuition,
//! electricity, water, telecom, tourism) and top-ups, with a balance that never goes below
//! zero while boxes are partitioned.
//!
//! The wallet's money is an [`escrow`](super::escrow) ledger. A top-up adds to the share of
//! the box that took the money, anywhere. A box pays only from its own share; the owner (the
//! holder's home box) delegates allowances to the boxes where the holder spends, boxes hand
//! allowances on or back, and the owner can ask for one back with a recall that the box
//! answers when it hears of it.

use std::collections::BTreeMap;

use automerge::AutoCommit;

use super::escrow::{self, EscrowError, Ledger, LedgerAt, Totals};
use super::store::{self, Fields, MapReader, MapWriter, Record, Scope, StoreError, tag_enum};
use super::values::{InputError, NodeRef, RecordId, Timestamp, Vnd};

tag_enum! {
    /// What a payment is for.
    pub enum Purpose {
        MedicalFee = "medical-fee",
        Tuition = "tuition",
        Electricity = "electricity",
        Water = "water",
        Telecom = "telecom",
        Tourism = "tourism",
        Other = "other",
    }
}

tag_enum! {
    /// How money came into the wallet.
    pub enum TopUpMethod {
        Cash = "cash",
        BankTransfer = "bank-transfer",
        VietQr = "vietqr",
    }
}

/// A wallet operation that the records or their rules refuse.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WalletError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Input(#[from] InputError),
    #[error(transparent)]
    Escrow(#[from] EscrowError),
    #[error("only the wallet's owner {owner} may recall an allowance; {node} asked")]
    NotOwner { node: NodeRef, owner: NodeRef },
}

/// The wallet of one card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wallet {
    pub id: RecordId,
    pub card: RecordId,
    /// The holder's home box: it delegates allowances and may recall them.
    pub owner: NodeRef,
    pub opened_at: Timestamp,
}

impl Record for Wallet {
    const SCOPE: Scope = Scope::Cards;
    const COLLECTION: &'static str = "wallets";

    fn id(&self) -> &RecordId {
        &self.id
    }
}

impl Fields for Wallet {
    fn write(&self, w: &mut MapWriter<'_>) -> Result<(), StoreError> {
        w.put("id", &self.id)?;
        w.put("card", &self.card)?;
        w.put("owner", &self.owner)?;
        w.put("opened_at", &self.opened_at)
    }

    fn read(r: &MapReader<'_>) -> Result<Self, StoreError> {
        Ok(Self {
            id: r.get("id")?,
            card: r.get("card")?,
            owner: r.get("owner")?,
            opened_at: r.get("opened_at")?,
        })
    }
}

/// Money taken in at a box.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopUp {
    pub node: NodeRef,
    pub amount: Vnd,
    pub method: TopUpMethod,
    pub at: Timestamp,
}

/// Money paid at a box, from that box's allowance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub node: NodeRef,
    pub amount: Vnd,
    pub purpose: Purpose,
    pub merchant: RecordId,
    pub at: Timestamp,
}

/// The wallet as one replica sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Balance {
    /// Everything topped up minus everything paid.
    pub total: i128,
    /// What each box may still spend.
    pub allowances: BTreeMap<NodeRef, i128>,
}

fn ledger(wallet: &RecordId) -> LedgerAt<'_> {
    LedgerAt {
        collection: Wallet::COLLECTION,
        record: wallet,
        slot: "vnd",
    }
}

/// Opens an empty wallet.
pub fn open(doc: &mut AutoCommit, wallet: &Wallet) -> Result<(), WalletError> {
    store::insert(doc, wallet)?;
    escrow::create_ledger(doc, ledger(&wallet.id))?;
    Ok(())
}

/// Adds money at `top_up.node`, which may spend it at once or hand it on.
pub fn top_up(
    doc: &mut AutoCommit,
    wallet: &RecordId,
    id: &RecordId,
    top_up: &TopUp,
) -> Result<(), WalletError> {
    store::fetch::<Wallet>(doc, wallet)?;
    let entry = escrow::Entry {
        node: top_up.node.clone(),
        amount: Vnd::positive("amount", i128::from(top_up.amount.get()))?.get(),
        at: top_up.at,
        kind: top_up.method.tag().to_owned(),
        reference: None,
    };
    escrow::credit(doc, ledger(wallet), id, &entry)?;
    Ok(())
}

/// Pays from the allowance of `payment.node`; refused if that allowance does not cover it.
pub fn pay(
    doc: &mut AutoCommit,
    wallet: &RecordId,
    id: &RecordId,
    payment: &Payment,
) -> Result<(), WalletError> {
    store::fetch::<Wallet>(doc, wallet)?;
    let entry = escrow::Entry {
        node: payment.node.clone(),
        amount: Vnd::positive("amount", i128::from(payment.amount.get()))?.get(),
        at: payment.at,
        kind: payment.purpose.tag().to_owned(),
        reference: Some(payment.merchant.clone()),
    };
    escrow::debit(doc, ledger(wallet), id, &entry)?;
    Ok(())
}

/// Hands part of `from`'s allowance to `to`. Written by `from` (the owner delegating, or a
/// box returning what it holds).
pub fn move_allowance(
    doc: &mut AutoCommit,
    wallet: &RecordId,
    id: &RecordId,
    from: &NodeRef,
    to: &NodeRef,
    amount: Vnd,
    at: Timestamp,
) -> Result<(), WalletError> {
    store::fetch::<Wallet>(doc, wallet)?;
    let amount = Vnd::positive("amount", i128::from(amount.get()))?.get();
    let mv = escrow::Move {
        from: from.clone(),
        to: to.clone(),
        amount,
        at,
        answers: None,
    };
    escrow::move_share(doc, ledger(wallet), id, &mv)?;
    Ok(())
}

/// The owner asks box `from` to return `amount` of its allowance.
pub fn recall(
    doc: &mut AutoCommit,
    wallet_id: &RecordId,
    id: &RecordId,
    by: &NodeRef,
    from: &NodeRef,
    amount: Vnd,
    at: Timestamp,
) -> Result<(), WalletError> {
    let wallet: Wallet = store::fetch(doc, wallet_id)?;
    if by != &wallet.owner {
        return Err(WalletError::NotOwner {
            node: by.clone(),
            owner: wallet.owner,
        });
    }
    let amount = Vnd::positive("amount", i128::from(amount.get()))?.get();
    let request = escrow::Recall {
        owner: by.clone(),
        from: from.clone(),
        amount,
        at,
    };
    escrow::recall(doc, ledger(wallet_id), id, &wallet.owner, &request)?;
    Ok(())
}

/// Answers the owner's recalls addressed to `node` with what its allowance holds.
pub fn answer_recalls(
    doc: &mut AutoCommit,
    wallet: &RecordId,
    node: &NodeRef,
    at: Timestamp,
) -> Result<Vec<escrow::Move>, WalletError> {
    Ok(escrow::answer_recalls(doc, ledger(wallet), node, at)?)
}

pub fn balance(doc: &AutoCommit, wallet: &RecordId) -> Result<Balance, WalletError> {
    let ledger = Ledger::load(doc, ledger(wallet))?;
    let allowances = ledger
        .nodes()
        .into_iter()
        .map(|n| (n.clone(), ledger.share(&n)))
        .collect();
    Ok(Balance {
        total: ledger.total(),
        allowances,
    })
}

/// What `node` may still spend from the wallet, from the running totals (the fast path a
/// payment takes; [`balance`] recomputes from the entries).
pub fn allowance(doc: &AutoCommit, wallet: &RecordId, node: &NodeRef) -> Result<i128, WalletError> {
    Ok(Totals::load(doc, ledger(wallet))?.share(node))
}

/// Every payment, keyed by id.
pub fn payments(
    doc: &AutoCommit,
    wallet: &RecordId,
) -> Result<BTreeMap<RecordId, Payment>, WalletError> {
    let ledger = Ledger::load(doc, ledger(wallet))?;
    let mut payments = BTreeMap::new();
    for (id, entry) in ledger.debits {
        let purpose = Purpose::parse("purpose", &entry.kind)?;
        let merchant = entry.reference.ok_or_else(|| InputError::Id {
            field: "merchant",
            value: String::new(),
        })?;
        let amount = Vnd::new("amount", i128::from(entry.amount))?;
        let payment = Payment {
            node: entry.node,
            amount,
            purpose,
            merchant,
            at: entry.at,
        };
        payments.insert(id, payment);
    }
    Ok(payments)
}

/// Every top-up, keyed by id.
pub fn top_ups(
    doc: &AutoCommit,
    wallet: &RecordId,
) -> Result<BTreeMap<RecordId, TopUp>, WalletError> {
    let ledger = Ledger::load(doc, ledger(wallet))?;
    let mut top_ups = BTreeMap::new();
    for (id, entry) in ledger.credits {
        let method = TopUpMethod::parse("method", &entry.kind)?;
        let amount = Vnd::new("amount", i128::from(entry.amount))?;
        top_ups.insert(
            id,
            TopUp {
                node: entry.node,
                amount,
                method,
                at: entry.at,
            },
        );
    }
    Ok(top_ups)
}
