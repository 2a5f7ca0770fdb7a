//! Escrow: a bounded quantity (a wallet's money, a sailing's seats, an offer's redemptions)
//! split into shares that each box spends on its own, so the total never goes below zero
//! however the boxes are partitioned.
//!
//! A ledger is four append-only maps of entries, each entry written once by one node:
//!
//! - `credits`: the quantity grows at the node that recorded it (a top-up, a sailing's seats
//!   created by its operator, an offer's cap);
//! - `moves`: a node hands part of its share to another node (the owner delegating an
//!   allowance to a box, a box returning it);
//! - `debits`: a node spends from its share (a payment, a seat sold, an offer redeemed);
//! - `recalls`: the owner asks a box to return part of its share; the box answers with a
//!   move when it sees the request.
//!
//! A node's share is its credits plus moves to it, minus its moves away and its debits. Only
//! the node itself can lower its share (by spending or moving), and it checks its own view
//! before doing so; everything other nodes write only raises it. So the share a node sees is
//! never more than its true share, and no share, nor the total, goes below zero after any
//! merge. This is the bounded counter of the escrow literature, written as plain records.

use std::collections::BTreeMap;

use automerge::{AutoCommit, ObjId, ROOT};

use super::store::{Fields, MapReader, MapWriter, StoreError, child_map};
use super::values::{InputError, NodeRef, RecordId, Timestamp};

/// Where a ledger lives: `ROOT.<collection>.<record>.ledgers.<slot>`.
#[derive(Debug, Clone, Copy)]
pub struct LedgerAt<'a> {
    pub collection: &'static str,
    pub record: &'a RecordId,
    pub slot: &'a str,
}

/// A change to a ledger that its rules refuse.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EscrowError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("{node} holds a share of {available}, less than the {amount} asked for")]
    Insufficient {
        node: NodeRef,
        available: i128,
        amount: u64,
    },
    #[error("ledger entry {id} already exists")]
    Duplicate { id: RecordId },
    #[error("only the owner {owner} may recall a share; {node} asked")]
    NotOwner { node: NodeRef, owner: NodeRef },
    #[error("a share cannot move from {node} to itself")]
    SameNode { node: NodeRef },
    #[error("amount must be more than zero")]
    Zero,
}

/// A credit or a debit: `amount` added to or spent from the share of `node`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub node: NodeRef,
    pub amount: u64,
    pub at: Timestamp,
    /// What the entry is for, as its ledger's owner type names it (`tuition`, `cash`).
    pub kind: String,
    /// The record the entry belongs to (a merchant, a pass, a card).
    pub reference: Option<RecordId>,
}

impl Fields for Entry {
    fn write(&self, w: &mut MapWriter<'_>) -> Result<(), StoreError> {
        w.put("node", &self.node)?;
        w.put("amount", &self.amount)?;
        w.put("at", &self.at)?;
        w.put("kind", &self.kind)?;
        w.put("ref", &self.reference)
    }

    fn read(r: &MapReader<'_>) -> Result<Self, StoreError> {
        Ok(Self {
            node: r.get("node")?,
            amount: r.get("amount")?,
            at: r.get("at")?,
            kind: r.get("kind")?,
            reference: r.get("ref")?,
        })
    }
}

/// Part of a share handed from `from` to `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    pub from: NodeRef,
    pub to: NodeRef,
    pub amount: u64,
    pub at: Timestamp,
    /// The recall this move answers, if any.
    pub answers: Option<RecordId>,
}

impl Fields for Move {
    fn write(&self, w: &mut MapWriter<'_>) -> Result<(), StoreError> {
        w.put("node", &self.from)?;
        w.put("to", &self.to)?;
        w.put("amount", &self.amount)?;
        w.put("at", &self.at)?;
        w.put("answers", &self.answers)
    }

    fn read(r: &MapReader<'_>) -> Result<Self, StoreError> {
        Ok(Self {
            from: r.get("node")?,
            to: r.get("to")?,
            amount: r.get("amount")?,
            at: r.get("at")?,
            answers: r.get("answers")?,
        })
    }
}

/// The owner's request that `from` return `amount` of its share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recall {
    pub owner: NodeRef,
    pub from: NodeRef,
    pub amount: u64,
    pub at: Timestamp,
}

impl Fields for Recall {
    fn write(&self, w: &mut MapWriter<'_>) -> Result<(), StoreError> {
        w.put("node", &self.owner)?;
        w.put("from", &self.from)?;
        w.put("amount", &self.amount)?;
        w.put("at", &self.at)
    }

    fn read(r: &MapReader<'_>) -> Result<Self, StoreError> {
        Ok(Self {
            owner: r.get("node")?,
            from: r.get("from")?,
            amount: r.get("amount")?,
            at: r.get("at")?,
        })
    }
}

/// A ledger as read from one replica.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ledger {
    pub credits: BTreeMap<RecordId, Entry>,
    pub debits: BTreeMap<RecordId, Entry>,
    pub moves: BTreeMap<RecordId, Move>,
    pub recalls: BTreeMap<RecordId, Recall>,
}

impl Ledger {
    pub fn load(doc: &AutoCommit, at: LedgerAt<'_>) -> Result<Self, StoreError> {
        let Some(map) = ledger_reader(doc, at)? else {
            return Ok(Self::default());
        };
        Ok(Self {
            credits: map.items("credits")?,
            debits: map.items("debits")?,
            moves: map.items("moves")?,
            recalls: map.items("recalls")?,
        })
    }

    /// What `node` may still spend or move: never negative on a replica that only took
    /// the ledger's own operations.
    pub fn share(&self, node: &NodeRef) -> i128 {
        let sum = |amounts: &mut dyn Iterator<Item = u64>| amounts.map(i128::from).sum::<i128>();
        let credited = sum(&mut self
            .credits
            .values()
            .filter(|e| &e.node == node)
            .map(|e| e.amount));
        let spent = sum(&mut self
            .debits
            .values()
            .filter(|e| &e.node == node)
            .map(|e| e.amount));
        let moved_in = sum(&mut self
            .moves
            .values()
            .filter(|m| &m.to == node)
            .map(|m| m.amount));
        let moved_out = sum(&mut self
            .moves
            .values()
            .filter(|m| &m.from == node)
            .map(|m| m.amount));
        credited + moved_in - moved_out - spent
    }

    /// Everything credited minus everything spent: the sum of all shares.
    pub fn total(&self) -> i128 {
        let credited: i128 = self.credits.values().map(|e| i128::from(e.amount)).sum();
        let spent: i128 = self.debits.values().map(|e| i128::from(e.amount)).sum();
        credited - spent
    }

    /// Every node that holds or held a share, in order.
    pub fn nodes(&self) -> Vec<NodeRef> {
        let mut nodes: Vec<NodeRef> = (self.credits.values().map(|e| e.node.clone()))
            .chain(self.debits.values().map(|e| e.node.clone()))
            .chain(
                self.moves
                    .values()
                    .flat_map(|m| [m.from.clone(), m.to.clone()]),
            )
            .collect();
        nodes.sort();
        nodes.dedup();
        nodes
    }

    /// Recalls addressed to `node` that it has not fully answered, with what remains of each.
    pub fn pending_recalls(&self, node: &NodeRef) -> Vec<(RecordId, u64)> {
        let answered = |id: &RecordId| -> u64 {
            let moves = self
                .moves
                .values()
                .filter(|m| m.answers.as_ref() == Some(id));
            moves.map(|m| m.amount).sum()
        };
        (self.recalls.iter())
            .filter(|(_, recall)| &recall.from == node)
            .map(|(id, recall)| (id.clone(), recall.amount.saturating_sub(answered(id))))
            .filter(|(_, remaining)| *remaining > 0)
            .collect()
    }
}

/// Each node's running totals, kept beside the entries so that a box checks its share in
/// time proportional to the number of nodes, not of entries: `totals.<node>` holds what the
/// node credited and spent and, under `out`, what it moved to each other node. Only the node
/// itself writes its row, in the same change as the entry, so a row never conflicts and
/// always agrees with the entries it wrote ([`Ledger::share`] recomputes from entries).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    credited: BTreeMap<NodeRef, u64>,
    spent: BTreeMap<NodeRef, u64>,
    moved: BTreeMap<(NodeRef, NodeRef), u64>,
}

impl Totals {
    pub fn load(doc: &AutoCommit, at: LedgerAt<'_>) -> Result<Self, StoreError> {
        let mut totals = Self::default();
        let Some(ledger) = ledger_reader(doc, at)? else {
            return Ok(totals);
        };
        let Some(rows) = ledger.map("totals")? else {
            return Ok(totals);
        };

        for key in rows.keys() {
            let node = NodeRef::new("node", &key).map_err(|e| rows.invalid(e))?;
            let Some(row) = rows.map(&key)? else { continue };
            totals.credited.insert(
                node.clone(),
                row.get::<Option<u64>>("credited")?.unwrap_or(0),
            );
            totals
                .spent
                .insert(node.clone(), row.get::<Option<u64>>("spent")?.unwrap_or(0));
            let Some(out) = row.map("out")? else { continue };
            for to in out.keys() {
                let amount = out.get::<Option<u64>>(&to)?.unwrap_or(0);
                let to = NodeRef::new("node", &to).map_err(|e| out.invalid(e))?;
                totals.moved.insert((node.clone(), to), amount);
            }
        }
        Ok(totals)
    }

    /// What `node` may still spend or move, from the running totals.
    pub fn share(&self, node: &NodeRef) -> i128 {
        let credited = i128::from(self.credited.get(node).copied().unwrap_or(0));
        let spent = i128::from(self.spent.get(node).copied().unwrap_or(0));
        let moves = self.moved.iter();
        let (moved_in, moved_out) = moves.fold((0i128, 0i128), |(inn, out), ((from, to), n)| {
            let n = i128::from(*n);
            (
                inn + if to == node { n } else { 0 },
                out + if from == node { n } else { 0 },
            )
        });
        credited + moved_in - moved_out - spent
    }

    fn check_share(&self, node: &NodeRef, amount: u64) -> Result<(), EscrowError> {
        let available = self.share(node);
        if available < i128::from(amount) {
            return Err(EscrowError::Insufficient {
                node: node.clone(),
                available,
                amount,
            });
        }
        Ok(())
    }
}

/// Records a credit: the quantity grows at `entry.node`. Allowed anywhere.
pub fn credit(
    doc: &mut AutoCommit,
    at: LedgerAt<'_>,
    id: &RecordId,
    entry: &Entry,
) -> Result<(), EscrowError> {
    check_new(doc, at, id, entry.amount)?;
    write_entry(doc, at, "credits", id, entry)?;
    bump(doc, at, &entry.node, "credited", entry.amount)
}

/// Records a debit: `entry.node` spends from its own share, which must cover it.
pub fn debit(
    doc: &mut AutoCommit,
    at: LedgerAt<'_>,
    id: &RecordId,
    entry: &Entry,
) -> Result<(), EscrowError> {
    check_new(doc, at, id, entry.amount)?;
    Totals::load(doc, at)?.check_share(&entry.node, entry.amount)?;
    write_entry(doc, at, "debits", id, entry)?;
    bump(doc, at, &entry.node, "spent", entry.amount)
}

/// Hands part of `mv.from`'s share to `mv.to`; only `mv.from` may write this.
pub fn move_share(
    doc: &mut AutoCommit,
    at: LedgerAt<'_>,
    id: &RecordId,
    mv: &Move,
) -> Result<(), EscrowError> {
    check_new(doc, at, id, mv.amount)?;
    if mv.from == mv.to {
        return Err(EscrowError::SameNode {
            node: mv.from.clone(),
        });
    }
    Totals::load(doc, at)?.check_share(&mv.from, mv.amount)?;
    write_move(doc, at, id, mv)
}

/// Records the owner's request that a box return part of its share. It takes nothing by
/// itself: the box's share only shrinks when the box answers.
pub fn recall(
    doc: &mut AutoCommit,
    at: LedgerAt<'_>,
    id: &RecordId,
    owner: &NodeRef,
    recall: &Recall,
) -> Result<(), EscrowError> {
    if &recall.owner != owner {
        return Err(EscrowError::NotOwner {
            node: recall.owner.clone(),
            owner: owner.clone(),
        });
    }
    if recall.from == recall.owner {
        return Err(EscrowError::SameNode {
            node: recall.from.clone(),
        });
    }
    check_new(doc, at, id, recall.amount)?;
    write_entry(doc, at, "recalls", id, recall)
}

/// Answers the recalls addressed to `node`, in id order, with as much of its share as it
/// holds. Returns the moves written; their ids derive from the recall, so they are the same
/// whoever computes them.
pub fn answer_recalls(
    doc: &mut AutoCommit,
    at: LedgerAt<'_>,
    node: &NodeRef,
    when: Timestamp,
) -> Result<Vec<Move>, EscrowError> {
    let mut ledger = Ledger::load(doc, at)?;
    let mut written = Vec::new();

    for (recall_id, remaining) in ledger.pending_recalls(node) {
        let available = u64::try_from(ledger.share(node).max(0)).unwrap_or(u64::MAX);
        let amount = remaining.min(available);
        if amount == 0 {
            break;
        }

        let Some(owner) = ledger.recalls.get(&recall_id).map(|r| r.owner.clone()) else {
            continue;
        };
        let answers = ledger
            .moves
            .values()
            .filter(|m| m.answers.as_ref() == Some(&recall_id));
        let id = answer_id(&recall_id, answers.count());
        let mv = Move {
            from: node.clone(),
            to: owner,
            amount,
            at: when,
            answers: Some(recall_id),
        };
        write_move(doc, at, &id, &mv)?;
        ledger.moves.insert(id, mv.clone());
        written.push(mv);
    }
    Ok(written)
}

fn answer_id(recall: &RecordId, nth: usize) -> RecordId {
    RecordId::derived("ans", &[recall.as_str(), &nth.to_string()])
}

fn check_new(
    doc: &AutoCommit,
    at: LedgerAt<'_>,
    id: &RecordId,
    amount: u64,
) -> Result<(), EscrowError> {
    if amount == 0 {
        return Err(EscrowError::Zero);
    }
    let Some(ledger) = ledger_reader(doc, at)? else {
        return Ok(());
    };
    for section in ["credits", "debits", "moves", "recalls"] {
        if ledger.path(&[section, id.as_str()])?.is_some() {
            return Err(EscrowError::Duplicate { id: id.clone() });
        }
    }
    Ok(())
}

fn write_move(
    doc: &mut AutoCommit,
    at: LedgerAt<'_>,
    id: &RecordId,
    mv: &Move,
) -> Result<(), EscrowError> {
    write_entry(doc, at, "moves", id, mv)?;
    let row = totals_row(doc, at, &mv.from)?;
    let out = child_map(doc, &row, "out")?;
    add(doc, &out, mv.to.as_str(), mv.amount)
}

/// Adds `amount` to the running total `field` of `node`'s row.
fn bump(
    doc: &mut AutoCommit,
    at: LedgerAt<'_>,
    node: &NodeRef,
    field: &str,
    amount: u64,
) -> Result<(), EscrowError> {
    let row = totals_row(doc, at, node)?;
    add(doc, &row, field, amount)
}

fn add(doc: &mut AutoCommit, obj: &ObjId, key: &str, amount: u64) -> Result<(), EscrowError> {
    let current: u64 = MapReader::new(doc, obj.clone(), "totals")
        .get::<Option<u64>>(key)?
        .unwrap_or(0);
    let mut w = MapWriter::new(doc, obj.clone(), "totals");
    w.put(key, &current.saturating_add(amount))?;
    Ok(())
}

fn totals_row(doc: &mut AutoCommit, at: LedgerAt<'_>, node: &NodeRef) -> Result<ObjId, StoreError> {
    let collection = child_map(doc, &ROOT, at.collection)?;
    let record = child_map(doc, &collection, at.record.as_str())?;
    let ledgers = child_map(doc, &record, "ledgers")?;
    let ledger = child_map(doc, &ledgers, at.slot)?;
    let totals = child_map(doc, &ledger, "totals")?;
    child_map(doc, &totals, node.as_str())
}

fn ledger_reader<'a>(
    doc: &'a AutoCommit,
    at: LedgerAt<'_>,
) -> Result<Option<MapReader<'a>>, StoreError> {
    let path = [at.collection, at.record.as_str(), "ledgers", at.slot];
    MapReader::root(doc, at.collection).path(&path)
}

/// Creates the ledger's empty sections, so that replicas writing their first entries
/// concurrently add to the same maps. Called by whoever creates the record that owns it.
pub fn create_ledger(doc: &mut AutoCommit, at: LedgerAt<'_>) -> Result<(), StoreError> {
    let collection = child_map(doc, &ROOT, at.collection)?;
    let record = child_map(doc, &collection, at.record.as_str())?;
    let ledgers = child_map(doc, &record, "ledgers")?;
    let ledger = child_map(doc, &ledgers, at.slot)?;
    for section in ["credits", "debits", "moves", "recalls", "totals"] {
        child_map(doc, &ledger, section)?;
    }
    Ok(())
}

fn write_entry<T: Fields>(
    doc: &mut AutoCommit,
    at: LedgerAt<'_>,
    section: &str,
    id: &RecordId,
    entry: &T,
) -> Result<(), EscrowError> {
    let collection = child_map(doc, &ROOT, at.collection)?;
    let record = child_map(doc, &collection, at.record.as_str())?;
    let ledgers = child_map(doc, &record, "ledgers")?;
    let ledger = child_map(doc, &ledgers, at.slot)?;
    let section = child_map(doc, &ledger, section)?;
    let obj = child_map(doc, &section, id.as_str())?;
    entry.write(&mut MapWriter::new(doc, obj, at.collection))?;
    Ok(())
}
