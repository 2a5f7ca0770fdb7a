//! Property tests for the rules that hold under partition: random operations on 3 to 5
//! replicas under random partitions and merges, the rule checked after every merge, and
//! convergence once everything is merged.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod records_common;

use std::collections::{BTreeMap, BTreeSet};

use automerge::AutoCommit;
use crdt_model::records::bookings::{self, Booking, BookingStatus};
use crdt_model::records::cards::Card;
use crdt_model::records::sports::{
    self, Fixture, FixtureResult, ResultEntry, Score, Sport, Tournament,
};
use crdt_model::records::store;
use crdt_model::records::tickets::{self, Pass, Redemption, SeatClass};
use crdt_model::records::values::Phone;
use crdt_model::records::wallet::{self, Payment, Purpose, TopUp, TopUpMethod, Wallet};
use proptest::prelude::*;
use records_common::*;

const CASES: u32 = 64;

fn config() -> ProptestConfig {
    // No regression files: a failing seed is turned into a named test instead.
    ProptestConfig {
        cases: CASES,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---- single-use redemption ------------------------------------------------------------

#[derive(Debug, Clone)]
enum TicketOp {
    /// The owner (replica 0) hands the right of an entitlement to a node.
    Delegate {
        ent: usize,
        to: usize,
    },
    /// The owner takes the right back.
    TakeBack {
        ent: usize,
    },
    /// The owner hands the right to a node, the node hears of it, and the owner takes it
    /// back: the node now holds a right it no longer has.
    HandAndTakeBack {
        ent: usize,
        to: usize,
    },
    /// A node tries to redeem at its gate.
    Redeem {
        ent: usize,
        node: usize,
    },
    /// The last delegate (or the owner) tries to redeem the last delegated entitlement: the
    /// uses that collide when the two are cut off from each other.
    RedeemLast {
        by_owner: bool,
    },
    Merge {
        from: usize,
        to: usize,
    },
}

const ENTITLEMENTS: [&str; 9] = ["e0", "e1", "e2", "e3", "e4", "e5", "e6", "e7", "multi"];

/// Weighted so that the owner often delegates, spreads the delegation, takes it back and
/// redeems while delegates are cut off: the run that makes double uses.
fn ticket_op(n: usize) -> impl Strategy<Value = TicketOp> {
    let from = move || prop_oneof![Just(0usize), 0..n];
    prop_oneof![
        1 => (0..9usize, 1..n).prop_map(|(ent, to)| TicketOp::Delegate { ent, to }),
        1 => (0..9usize).prop_map(|ent| TicketOp::TakeBack { ent }),
        2 => (0..9usize, 1..n).prop_map(|(ent, to)| TicketOp::HandAndTakeBack { ent, to }),
        2 => (0..9usize, 0..n).prop_map(|(ent, node)| TicketOp::Redeem { ent, node }),
        5 => any::<bool>().prop_map(|by_owner| TicketOp::RedeemLast { by_owner }),
        4 => (from(), 0..n).prop_map(|(from, to)| TicketOp::Merge { from, to }),
    ]
}

/// Every entitlement used beyond what it allows has exactly one conflict, listing every use,
/// and nothing else is reported.
fn check_conflicts(doc: &AutoCommit) {
    let pass: Pass = store::fetch(doc, &id("pass-1")).unwrap();
    let conflicts = tickets::conflicts(doc).unwrap();
    let mut expected = BTreeMap::new();
    for (ent, entitlement) in &pass.entitlements {
        let uses = tickets::uses(doc, &pass.id, ent).unwrap();
        if uses.len() > entitlement.max_uses as usize {
            expected.insert(ent.clone(), uses.keys().cloned().collect::<BTreeSet<_>>());
        }
    }
    let found: BTreeMap<_, _> = conflicts
        .iter()
        .map(|c| {
            (
                c.entitlement.clone(),
                c.uses
                    .iter()
                    .map(|(id, _)| id.clone())
                    .collect::<BTreeSet<_>>(),
            )
        })
        .collect();
    assert_eq!(found.len(), conflicts.len(), "a conflict reported twice");
    assert_eq!(found, expected);
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn every_double_redemption_is_detected_exactly_once(
        (n, ops) in (3usize..=5).prop_flat_map(|n| (Just(n), proptest::collection::vec(ticket_op(n), 1..60)))
    ) {
        let owner = node_n(0);
        let mut base = doc(0);
        tickets::sell(&mut base, &pass("pass-1", &owner, 8, false), &owner).unwrap();
        let mut docs = replicas(&mut base, n);
        let mut last = (0, 1);

        for (step, op) in ops.iter().enumerate() {
            let redeem = |docs: &mut [AutoCommit], ent: usize, node: usize| {
                let redemption = Redemption { node: node_n(node), gate: id("gate-1"), by: id("scanner"), at: at(HOUR_MS) };
                // Refusals (not the right holder, used up) are part of the run.
                let _ = tickets::redeem(&mut docs[node], &pass_id(), &id(ENTITLEMENTS[ent]), &id(&format!("r{step}")), &redemption);
            };
            match *op {
                TicketOp::Delegate { ent, to } => {
                    last = (ent, to);
                    let to = node_n(to);
                    tickets::delegate(&mut docs[0], &pass_id(), &id(ENTITLEMENTS[ent]), &owner, Some(&to)).unwrap();
                }
                TicketOp::TakeBack { ent } => {
                    tickets::delegate(&mut docs[0], &pass_id(), &id(ENTITLEMENTS[ent]), &owner, None).unwrap();
                }
                TicketOp::HandAndTakeBack { ent, to } => {
                    last = (ent, to);
                    let delegate = node_n(to);
                    tickets::delegate(&mut docs[0], &pass_id(), &id(ENTITLEMENTS[ent]), &owner, Some(&delegate)).unwrap();
                    merge(&mut docs, 0, to);
                    check_conflicts(&docs[to]);
                    tickets::delegate(&mut docs[0], &pass_id(), &id(ENTITLEMENTS[ent]), &owner, None).unwrap();
                }
                TicketOp::Redeem { ent, node } => redeem(&mut docs, ent, node),
                TicketOp::RedeemLast { by_owner } => {
                    redeem(&mut docs, last.0, if by_owner { 0 } else { last.1 });
                }
                TicketOp::Merge { from, to } => {
                    merge(&mut docs, from, to);
                    check_conflicts(&docs[to]);
                }
            }
        }

        merge_all(&mut docs);
        let reference = tickets::conflicts(&docs[0]).unwrap();
        for doc in &docs {
            check_conflicts(doc);
            prop_assert_eq!(&tickets::conflicts(doc).unwrap(), &reference);
            prop_assert_eq!(store::fetch::<Pass>(doc, &pass_id()).unwrap(), store::fetch::<Pass>(&docs[0], &pass_id()).unwrap());
        }
    }
}

fn pass_id() -> crdt_model::records::values::RecordId {
    id("pass-1")
}

// ---- wallet escrow ----------------------------------------------------------------------

#[derive(Debug, Clone)]
enum WalletOp {
    TopUp { node: usize, amount: u64 },
    Pay { node: usize, amount: u64 },
    Move { from: usize, to: usize, amount: u64 },
    Recall { from: usize, amount: u64 },
    Answer { node: usize },
    Merge { from: usize, to: usize },
}

fn wallet_op(n: usize) -> impl Strategy<Value = WalletOp> {
    let amount = || (1u64..=8).prop_map(|k| k * 25_000);
    prop_oneof![
        1 => (0..n, amount()).prop_map(|(node, amount)| WalletOp::TopUp { node, amount }),
        3 => (0..n, amount()).prop_map(|(node, amount)| WalletOp::Pay { node, amount }),
        2 => (0..n, 0..n, amount()).prop_map(|(from, to, amount)| WalletOp::Move { from, to, amount }),
        1 => (1..n, amount()).prop_map(|(from, amount)| WalletOp::Recall { from, amount }),
        1 => (1..n).prop_map(|node| WalletOp::Answer { node }),
        3 => (0..n, 0..n).prop_map(|(from, to)| WalletOp::Merge { from, to }),
    ]
}

fn check_balance(doc: &AutoCommit) {
    let balance = wallet::balance(doc, &id("vi-1")).unwrap();
    assert!(balance.total >= 0, "balance {} below zero", balance.total);
    for (node, allowance) in &balance.allowances {
        assert!(*allowance >= 0, "allowance of {node} is {allowance}");
    }
    assert_eq!(balance.allowances.values().sum::<i128>(), balance.total);
    for (node, allowance) in &balance.allowances {
        let fast = wallet::allowance(doc, &id("vi-1"), node).unwrap();
        assert_eq!(
            fast, *allowance,
            "running totals of {node} disagree with the entries"
        );
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn a_wallet_balance_never_goes_below_zero(
        (n, ops) in (3usize..=5).prop_flat_map(|n| (Just(n), proptest::collection::vec(wallet_op(n), 1..60)))
    ) {
        let owner = node_n(0);
        let wallet_id = id("vi-1");
        let mut base = doc(0);
        wallet::open(&mut base, &Wallet { id: wallet_id.clone(), card: id("the-1"), owner: owner.clone(), opened_at: at(0) }).unwrap();
        let first = TopUp { node: owner.clone(), amount: vnd(200_000), method: TopUpMethod::Cash, at: at(0) };
        wallet::top_up(&mut base, &wallet_id, &id("nap-0"), &first).unwrap();
        let mut docs = replicas(&mut base, n);

        let mut topped_up = 200_000u64;
        let mut paid = 0u64;
        for (step, op) in ops.iter().enumerate() {
            let entry_id = id(&format!("op-{step}"));
            let when = at(i64::try_from(step).unwrap() * 60_000);
            match *op {
                WalletOp::TopUp { node, amount } => {
                    let top_up = TopUp { node: node_n(node), amount: vnd(amount), method: TopUpMethod::VietQr, at: when };
                    wallet::top_up(&mut docs[node], &wallet_id, &entry_id, &top_up).unwrap();
                    topped_up += amount;
                }
                WalletOp::Pay { node, amount } => {
                    let payment = Payment { node: node_n(node), amount: vnd(amount), purpose: Purpose::MedicalFee, merchant: id("ttyt-phu-quy"), at: when };
                    if wallet::pay(&mut docs[node], &wallet_id, &entry_id, &payment).is_ok() {
                        paid += amount;
                    }
                }
                WalletOp::Move { from, to, amount } => {
                    let _ = wallet::move_allowance(&mut docs[from], &wallet_id, &entry_id, &node_n(from), &node_n(to), vnd(amount), when);
                }
                WalletOp::Recall { from, amount } => {
                    wallet::recall(&mut docs[0], &wallet_id, &entry_id, &owner, &node_n(from), vnd(amount), when).unwrap();
                }
                WalletOp::Answer { node } => {
                    wallet::answer_recalls(&mut docs[node], &wallet_id, &node_n(node), when).unwrap();
                }
                WalletOp::Merge { from, to } => {
                    merge(&mut docs, from, to);
                    check_balance(&docs[to]);
                }
            }
            if !matches!(op, WalletOp::Merge { .. }) {
                check_balance(&docs[op_node(op)]);
            }
        }

        merge_all(&mut docs);
        let reference = wallet::balance(&docs[0], &wallet_id).unwrap();
        prop_assert_eq!(reference.total, i128::from(topped_up) - i128::from(paid), "nothing lost");
        for doc in &docs {
            check_balance(doc);
            prop_assert_eq!(&wallet::balance(doc, &wallet_id).unwrap(), &reference);
        }
    }
}

fn op_node(op: &WalletOp) -> usize {
    match *op {
        WalletOp::TopUp { node, .. } | WalletOp::Pay { node, .. } | WalletOp::Answer { node } => {
            node
        }
        WalletOp::Move { from, .. } => from,
        WalletOp::Recall { .. } => 0,
        WalletOp::Merge { to, .. } => to,
    }
}

// ---- bookings ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum BookingOp {
    Request {
        node: usize,
        room: usize,
        day: u64,
        nights: u64,
    },
    Confirm {
        booking: usize,
    },
    Cancel {
        booking: usize,
        node: usize,
    },
    AnswerPending {
        owner: usize,
    },
    Merge {
        from: usize,
        to: usize,
    },
}

/// Room r0 belongs to box 0, room r1 to box 1.
const ROOMS: [&str; 2] = ["r0", "r1"];

fn booking_op(n: usize) -> impl Strategy<Value = BookingOp> {
    prop_oneof![
        3 => (0..n, 0..2usize, 0..6u64, 1..4u64).prop_map(|(node, room, day, nights)| BookingOp::Request { node, room, day, nights }),
        2 => (0..40usize).prop_map(|booking| BookingOp::Confirm { booking }),
        1 => (0..40usize, 0..n).prop_map(|(booking, node)| BookingOp::Cancel { booking, node }),
        1 => (0..2usize).prop_map(|owner| BookingOp::AnswerPending { owner }),
        3 => (0..n, 0..n).prop_map(|(from, to)| BookingOp::Merge { from, to }),
    ]
}

fn check_no_double_booking(doc: &AutoCommit) {
    let all: Vec<Booking> = store::list(doc).unwrap();
    let confirmed: Vec<&Booking> = all
        .iter()
        .filter(|b| b.status() == BookingStatus::Confirmed)
        .collect();
    for (i, a) in confirmed.iter().enumerate() {
        for b in &confirmed[i + 1..] {
            assert!(
                a.resource != b.resource || !a.stay.overlaps(&b.stay),
                "{} and {} are both confirmed for {}",
                a.id,
                b.id,
                a.resource
            );
        }
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn a_room_is_never_confirmed_for_two_overlapping_bookings(
        (n, ops) in (3usize..=5).prop_flat_map(|n| (Just(n), proptest::collection::vec(booking_op(n), 1..60)))
    ) {
        let mut docs = replicas(&mut doc(0), n);
        let mut requested: Vec<(usize, String)> = Vec::new();

        for (step, op) in ops.iter().enumerate() {
            let when = at(i64::try_from(step).unwrap() * 60_000);
            match *op {
                BookingOp::Request { node, room, day, nights } => {
                    let booking_id = format!("bk-{step}");
                    let booking = booking(&booking_id, ROOMS[room], &node_n(room), &node_n(node), day, nights);
                    request(&mut docs[node], &booking);
                    requested.push((node, booking_id));
                }
                BookingOp::Confirm { booking } => {
                    let Some((_, booking_id)) = requested.get(booking) else { continue };
                    for (owner, doc) in docs.iter_mut().enumerate().take(2) {
                        // Refusals (not the owner, not arrived yet, overlap) are part of the run.
                        let _ = bookings::confirm(doc, &id(booking_id), &node_n(owner), when);
                    }
                }
                BookingOp::Cancel { booking, node } => {
                    let Some((_, booking_id)) = requested.get(booking) else { continue };
                    let _ = bookings::cancel(&mut docs[node], &id(booking_id), &node_n(node), when);
                }
                BookingOp::AnswerPending { owner } => {
                    bookings::answer_pending(&mut docs[owner], &node_n(owner), when).unwrap();
                }
                BookingOp::Merge { from, to } => {
                    merge(&mut docs, from, to);
                    check_no_double_booking(&docs[to]);
                }
            }
        }

        merge_all(&mut docs);
        let reference: Vec<Booking> = store::list(&docs[0]).unwrap();
        for doc in &docs {
            check_no_double_booking(doc);
            prop_assert_eq!(&store::list::<Booking>(doc).unwrap(), &reference);
        }
        for booking in &reference {
            // A request the owner never saw is still pending, not silently decided.
            if booking.answer.is_none() && booking.cancelled_at.is_none() {
                prop_assert_eq!(booking.status(), BookingStatus::Pending);
            }
        }
    }
}

// ---- seat quotas ------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    #[test]
    fn a_sailing_is_never_sold_beyond_its_seats(
        (n, ops) in (3usize..=5).prop_flat_map(|n| (Just(n), proptest::collection::vec((0..3u8, 0..n, 0..n, 1..4u32), 1..60)))
    ) {
        let operator = node_n(0);
        let mut base = doc(0);
        tickets::create_sailing(&mut base, &sailing("s-1", &operator), &[(SeatClass::Economy, 6)]).unwrap();
        let mut docs = replicas(&mut base, n);

        for (step, (kind, a, b, count)) in ops.into_iter().enumerate() {
            match kind {
                0 => {
                    let mv = crdt_model::records::escrow::Move { from: node_n(a), to: node_n(b), amount: u64::from(count), at: at(0), answers: None };
                    let _ = tickets::move_seats(&mut docs[a], &id("s-1"), SeatClass::Economy, &id(&format!("mv-{step}")), &mv);
                }
                1 => {
                    let _ = tickets::sell(&mut docs[a], &ferry_pass(&format!("p-{step}"), &node_n(a), "s-1"), &node_n(a));
                }
                _ => {
                    merge(&mut docs, a, b);
                    let (_, left) = tickets::seats(&docs[b], &id("s-1"), SeatClass::Economy, &node_n(b)).unwrap();
                    prop_assert!(left >= 0, "sailing oversold: {} seats left", left);
                    prop_assert!(store::list::<Pass>(&docs[b]).unwrap().len() <= 6);
                }
            }
        }
        merge_all(&mut docs);
        prop_assert!(store::list::<Pass>(&docs[0]).unwrap().len() <= 6);
    }
}

// ---- concurrent field edits -------------------------------------------------------------

/// Each replica edits its own field of one card concurrently; fields are set to values
/// derived from `v`.
fn edit(card: &mut Card, field: usize, v: u8) {
    match field {
        0 => {
            card.profile.phone =
                Some(Phone::new("test", &format!("09123456{:02}", v % 100)).unwrap())
        }
        1 => card.profile.title = Some(text(&format!("Chức danh {v}"))),
        2 => card.commune = id(["tam-thanh", "ngu-phung", "long-hai"][usize::from(v) % 3]),
        3 => card.profile.email = Some(text(&format!("can-bo-{v}@phuquy.gov.vn"))),
        _ => {
            let membership = card.memberships.values().next().unwrap().clone();
            card.memberships.insert(id(&format!("clb-{v}")), membership);
        }
    }
}

fn has_edit(card: &Card, field: usize, v: u8) -> bool {
    let mut expected = card.clone();
    edit(&mut expected, field, v);
    expected == *card
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn concurrent_edits_of_different_fields_all_survive(
        (n, values, merges) in (3usize..=5).prop_flat_map(|n| (
            Just(n),
            proptest::collection::vec(any::<u8>(), n),
            proptest::collection::vec((0..n, 0..n), 0..20),
        ))
    ) {
        let mut base = doc(0);
        store::insert(&mut base, &card("the-1", &node("hall"))).unwrap();
        let mut docs = replicas(&mut base, n);
        for (r, v) in values.iter().enumerate() {
            let mut card: Card = store::fetch(&docs[r], &id("the-1")).unwrap();
            edit(&mut card, r, *v);
            store::put(&mut docs[r], &card).unwrap();
        }

        let mut known: Vec<BTreeSet<usize>> = (0..n).map(|r| BTreeSet::from([r])).collect();
        for (from, to) in merges {
            merge(&mut docs, from, to);
            let from_known = known[from].clone();
            known[to].extend(from_known);
            let card: Card = store::fetch(&docs[to], &id("the-1")).unwrap();
            for r in &known[to] {
                prop_assert!(has_edit(&card, *r, values[*r]), "edit of replica {} lost on {}", r, to);
            }
        }

        merge_all(&mut docs);
        let reference: Card = store::fetch(&docs[0], &id("the-1")).unwrap();
        for (r, v) in values.iter().enumerate() {
            prop_assert!(has_edit(&reference, r, *v), "edit of replica {} lost", r);
        }
        for doc in &docs {
            prop_assert_eq!(&store::fetch::<Card>(doc, &id("the-1")).unwrap(), &reference);
        }
    }
}

// ---- sports results ---------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    #[test]
    fn differing_results_from_two_referees_are_a_visible_conflict(
        (n, ops) in (3usize..=5).prop_flat_map(|n| (Just(n), proptest::collection::vec((any::<bool>(), 0..n, 0..n, 0..3u32), 1..30)))
    ) {
        let organiser = node_n(0);
        let mut base = doc(0);
        let tournament = Tournament {
            id: id("giai-1"),
            name: text("Giải bóng chuyền bãi biển"),
            sport: Sport::BeachVolleyball,
            commune: id("tam-thanh"),
            starts: date("2025-04-30"),
            ends: date("2025-05-01"),
            organiser: organiser.clone(),
        };
        store::insert(&mut base, &tournament).unwrap();
        let referees: Vec<_> = (0..n).map(|r| id(&format!("tt-{r}"))).collect();
        let fixture = Fixture {
            id: id("tran-1"),
            tournament: tournament.id.clone(),
            home: id("doi-a"),
            away: id("doi-b"),
            kickoff: at(0),
            venue: text("Bãi biển Triều Dương"),
            referees: referees.iter().cloned().collect(),
        };
        sports::schedule(&mut base, &fixture).unwrap();
        let mut docs = replicas(&mut base, n);

        for (enter, a, b, home) in ops {
            if enter {
                let entry = ResultEntry { score: Score { home, away: 1 }, at: at(HOUR_MS), node: node_n(a) };
                sports::enter_result(&mut docs[a], &fixture.id, &referees[a], &entry).unwrap();
            } else {
                merge(&mut docs, a, b);
                let entries = sports::entries(&docs[b], &fixture.id).unwrap();
                let scores: BTreeSet<Score> = entries.values().flatten().copied().collect();
                let result = sports::result(&docs[b], &fixture.id).unwrap();
                match scores.len() {
                    0 => prop_assert_eq!(result, FixtureResult::NotPlayed),
                    1 => prop_assert!(matches!(result, FixtureResult::Agreed(_))),
                    _ => prop_assert_eq!(result, FixtureResult::Conflict(entries)),
                }
            }
        }

        merge_all(&mut docs);
        let reference = sports::result(&docs[0], &fixture.id).unwrap();
        for doc in &docs {
            prop_assert_eq!(&sports::result(doc, &fixture.id).unwrap(), &reference);
        }
        if matches!(reference, FixtureResult::Conflict(_)) {
            sports::decide(&mut docs[0], &fixture.id, &organiser, Score { home: 2, away: 1 }, at(DAY_MS)).unwrap();
            prop_assert_eq!(sports::result(&docs[0], &fixture.id).unwrap(), FixtureResult::Decided(Score { home: 2, away: 1 }));
        }
    }
}
