//! The checks run at the end of every run, once the healed island has settled. The check
//! that no box holds a scope its role may not receive runs on every arrival instead
//! ([`World::announce`]). The first failed check stops the run with an account of it.
//!
//! Conflicts, balances and bookings are derived from the records, identically on every
//! replica that holds the same records; after the convergence check has proved that the
//! replicas hold the same entries, reading them at one box covers every box connected to
//! it: the hub, or the document's owner where the hub is not connected for that scope.
//! Injected double uses are also checked at every box that reads tickets and is connected
//! to the port.

use std::collections::BTreeSet;

use crdt_model::records::bookings::{Booking, BookingStatus};
use crdt_model::records::{store, tickets, wallet};
use provisioning::policy::Role;
use serde::Serialize;

use crate::SimError;
use crate::world::World;

/// What the checks looked at.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct CheckCounts {
    /// Feeds whose every acknowledged entry was found at every entitled box.
    pub feeds_converged: u64,
    pub acknowledged_entries: u64,
    pub double_uses_injected: u64,
    pub conflicts_detected: u64,
    pub wallets_checked: u64,
    pub bookings_confirmed: u64,
}

pub(crate) fn run_all(world: &mut World) -> Result<CheckCounts, SimError> {
    let mut counts = CheckCounts::default();
    convergence(world, &mut counts);
    if world.failure.is_some() {
        return Ok(counts);
    }
    let Some(hub) = world.boxes.iter().position(|b| b.role == Role::Hub) else {
        return Ok(counts);
    };
    double_uses(world, hub, &mut counts)?;
    if world.failure.is_some() {
        return Ok(counts);
    }
    wallets(world, hub, &mut counts)?;
    if world.failure.is_some() {
        return Ok(counts);
    }
    bookings(world, hub, &mut counts)?;
    Ok(counts)
}

/// Every acknowledged entry is held by its origin and by every box entitled to its scope
/// and connected to the origin over links carrying the scope.
fn convergence(world: &mut World, counts: &mut CheckCounts) {
    let settled = if world.settled_at.is_some() {
        "the island had settled"
    } else {
        "the island had NOT settled by the deadline"
    };
    let feeds: Vec<_> = world
        .writes
        .iter()
        .map(|(f, t)| (f.clone(), t.len() as u64))
        .collect();
    for (feed, written) in feeds {
        let Some(origin) = world.boxes.iter().position(|b| b.node == feed.origin) else {
            continue;
        };
        let held = world.boxes[origin].replica.heads().seq(&feed);
        if held < written {
            let account = format!(
                "{} acknowledged {written} entries of its {} feed but holds {held}",
                world.boxes[origin].name, feed.scope
            );
            world.fail("no acknowledged write lost", account);
            return;
        }
        for b in world.component(origin, &feed.scope, false) {
            let seq = world.boxes[b].replica.heads().seq(&feed);
            if seq != written {
                let account = format!(
                    "{} holds {seq} of the {written} entries of {}'s {} feed at the end; {settled}",
                    world.boxes[b].name, world.boxes[origin].name, feed.scope
                );
                world.fail("replicas converge once connected", account);
                return;
            }
        }
        counts.feeds_converged += 1;
        counts.acknowledged_entries += written;
    }
}

/// Every injected double use is a conflict, and there is no other.
fn double_uses(world: &mut World, hub: usize, counts: &mut CheckCounts) -> Result<(), SimError> {
    let passes: Vec<_> = world
        .work
        .passes
        .iter()
        .map(|p| (p.id.clone(), p.key.clone()))
        .collect();
    let injected = world.work.injected.clone();
    counts.double_uses_injected = injected.len() as u64;

    let port = world.boxes.iter().position(|b| b.role == Role::Port);
    let judges: Vec<usize> = [Some(hub), port].into_iter().flatten().collect();
    let mut found = BTreeSet::new();
    for (id, key) in &passes {
        let Some(doc) = first_holder(world, &judges, key)? else {
            continue;
        };
        let conflicts = tickets::conflicts(&doc)
            .map_err(|e| SimError::Internal(format!("conflicts of {id}: {e}")))?;
        for conflict in conflicts {
            found.insert(conflict.pass);
        }
    }
    counts.conflicts_detected = found.len() as u64;
    if let Some(missed) = injected.difference(&found).next() {
        let account = format!("pass {missed} was used at two boxes but shows no conflict");
        world.fail("every double redemption detected", account);
        return Ok(());
    }
    if let Some(spurious) = found.difference(&injected).next() {
        let account = format!("pass {spurious} shows a conflict but was never used twice");
        world.fail("no spurious double redemption", account);
        return Ok(());
    }

    // Every box that reads tickets and is connected to the port for them.
    let tickets =
        crdt_model::Scope::new("tickets").map_err(|e| SimError::Internal(e.to_string()))?;
    let readers: Vec<usize> = match port {
        Some(port) => world
            .component(port, &tickets, false)
            .into_iter()
            .filter(|b| world.boxes[*b].reads.contains(&tickets))
            .collect(),
        None => Vec::new(),
    };
    for (id, key) in passes.iter().filter(|(id, _)| injected.contains(id)) {
        for &b in &readers {
            let Some(doc) = world.read_doc(b, key)? else {
                let account = format!("{} does not hold pass {id}", world.boxes[b].name);
                world.fail("every double redemption detected", account);
                return Ok(());
            };
            let conflicts = tickets::conflicts(&doc)
                .map_err(|e| SimError::Internal(format!("conflicts of {id}: {e}")))?;
            if !conflicts.iter().any(|c| &c.pass == id) {
                let name = &world.boxes[b].name;
                let account = format!("{name} shows no conflict on pass {id}, used twice");
                world.fail("every double redemption detected", account);
                return Ok(());
            }
        }
    }
    Ok(())
}

/// No wallet's balance, and no box's allowance, below zero.
fn wallets(world: &mut World, hub: usize, counts: &mut CheckCounts) -> Result<(), SimError> {
    let wallets: Vec<_> = world
        .work
        .wallets
        .iter()
        .cloned()
        .zip(world.work.wallet_ids.iter().cloned())
        .collect();
    let mut judges = vec![hub];
    judges.extend((0..world.boxes.len()).filter(|b| world.boxes[*b].role == Role::Commune));
    for (key, id) in wallets {
        let Some(doc) = first_holder(world, &judges, &key)? else {
            continue;
        };
        let balance = wallet::balance(&doc, &id)
            .map_err(|e| SimError::Internal(format!("balance of {id}: {e}")))?;
        counts.wallets_checked += 1;
        if balance.total < 0 {
            let account = format!("wallet {id} stands at {} VND", balance.total);
            world.fail("no wallet below zero", account);
            return Ok(());
        }
        if let Some((node, share)) = balance.allowances.iter().find(|(_, s)| **s < 0) {
            let account = format!("wallet {id}: the allowance of {node} stands at {share} VND");
            world.fail("no wallet below zero", account);
            return Ok(());
        }
    }
    Ok(())
}

/// No two confirmed bookings of one room share a night.
fn bookings(world: &mut World, hub: usize, counts: &mut CheckCounts) -> Result<(), SimError> {
    let docs: Vec<_> = world.work.resort_docs.clone();
    for (resort, key) in docs {
        let Some(doc) = first_holder(world, &[hub, resort], &key)? else {
            continue;
        };
        let all: Vec<Booking> = store::list(&doc)
            .map_err(|e| SimError::Internal(format!("bookings of {resort}: {e}")))?;
        let confirmed: Vec<&Booking> = all
            .iter()
            .filter(|b| b.status() == BookingStatus::Confirmed)
            .collect();
        counts.bookings_confirmed += confirmed.len() as u64;
        for (i, a) in confirmed.iter().enumerate() {
            for b in &confirmed[i + 1..] {
                if a.resource_kind == b.resource_kind
                    && a.resource == b.resource
                    && a.stay.overlaps(&b.stay)
                {
                    let account = format!(
                        "bookings {} and {} of {} at {} are both confirmed and share a night",
                        a.id, b.id, a.resource, world.boxes[resort].name
                    );
                    world.fail("no overlapping confirmed bookings", account);
                    return Ok(());
                }
            }
        }
    }
    Ok(())
}

/// The document as the first of `boxes` holding it has it.
fn first_holder(
    world: &mut World,
    boxes: &[usize],
    key: &crdt_model::DocKey,
) -> Result<Option<automerge::AutoCommit>, SimError> {
    for &b in boxes {
        if let Some(doc) = world.read_doc(b, key)? {
            return Ok(Some(doc));
        }
    }
    Ok(None)
}
