//! Statistics are a function of the records: two replicas that hold the same records, however
//! they got them, compute the same figures.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod records_common;

use automerge::AutoCommit;
use crdt_model::records::bookings;
use crdt_model::records::lodging;
use crdt_model::records::stats::{self, Sources};
use crdt_model::records::store;
use crdt_model::records::tickets::{self, Redemption};
use crdt_model::records::values::SiteOffset;
use crdt_model::records::wallet::{self, Payment, Purpose, TopUp, TopUpMethod, Wallet};
use records_common::*;

struct Island {
    tickets: Vec<AutoCommit>,
    cards: Vec<AutoCommit>,
    lodging: Vec<AutoCommit>,
    bookings: Vec<AutoCommit>,
}

/// Two replicas of each scope, each writing its share of a holiday morning, then merged in
/// opposite orders.
fn island() -> Island {
    let port = node("port-tam-thanh");
    let hotel = node("ks-hai-duong");
    let hall = node("hall-ngu-phung");

    let mut tickets_base = doc(0);
    for p in 0..6 {
        let pass = pass(&format!("pass-{p}"), &port, 2, p % 3 == 0);
        tickets::sell(&mut tickets_base, &pass, &port).unwrap();
    }
    let mut tickets = replicas(&mut tickets_base, 2);
    for p in 0..6 {
        let gate = Redemption {
            node: port.clone(),
            gate: id("gate-1"),
            by: id("staff"),
            at: at(p * 5 * HOUR_MS),
        };
        tickets::redeem(
            &mut tickets[p as usize % 2],
            &id(&format!("pass-{p}")),
            &id("e0"),
            &id("r-in"),
            &gate,
        )
        .unwrap();
    }

    let mut lodging_base = doc(0);
    store::insert(&mut lodging_base, &establishment(&hotel)).unwrap();
    for r in ["101", "102", "103"] {
        store::insert(&mut lodging_base, &room(r, 400_000)).unwrap();
    }
    let mut lodging = replicas(&mut lodging_base, 2);
    lodging::check_in(
        &mut lodging[0],
        &registration("reg-1", "101", &hotel, "2025-04-30", 2),
    )
    .unwrap();
    lodging::check_in(
        &mut lodging[1],
        &registration("reg-2", "102", &hotel, "2025-05-01", 3),
    )
    .unwrap();
    lodging::check_in(
        &mut lodging[1],
        &registration("reg-3", "101", &hotel, "2025-05-02", 1),
    )
    .unwrap();

    let mut cards_base = doc(0);
    wallet::open(
        &mut cards_base,
        &Wallet {
            id: id("vi-1"),
            card: id("the-1"),
            owner: hall.clone(),
            opened_at: at(0),
        },
    )
    .unwrap();
    let mut cards = replicas(&mut cards_base, 2);
    for (i, n) in [&hall, &port].into_iter().enumerate() {
        let top_up = TopUp {
            node: n.clone(),
            amount: vnd(1_000_000),
            method: TopUpMethod::Cash,
            at: at(0),
        };
        wallet::top_up(
            &mut cards[i],
            &id("vi-1"),
            &id(&format!("nap-{i}")),
            &top_up,
        )
        .unwrap();
        let payment = Payment {
            node: n.clone(),
            amount: vnd(250_000),
            purpose: Purpose::Tourism,
            merchant: id("lan-bien"),
            at: at(HOUR_MS),
        };
        wallet::pay(
            &mut cards[i],
            &id("vi-1"),
            &id(&format!("tt-{i}")),
            &payment,
        )
        .unwrap();
    }

    let mut bookings = replicas(&mut doc(0), 2);
    bookings::check_in(&mut bookings[0], &check_in("ci-1", &node("gate-a"))).unwrap();
    bookings::check_in(&mut bookings[1], &check_in("ci-2", &node("gate-b"))).unwrap();

    for docs in [&mut tickets, &mut cards, &mut lodging, &mut bookings] {
        let mut second = docs[1].fork();
        docs[0].merge(&mut second).unwrap();
        let mut first = docs[0].fork();
        docs[1].merge(&mut first).unwrap();
    }
    Island {
        tickets,
        cards,
        lodging,
        bookings,
    }
}

fn figures(island: &Island, r: usize) -> stats::Statistics {
    let sources = Sources {
        tickets: &[&island.tickets[r]],
        cards: &[&island.cards[r]],
        lodging: &[&island.lodging[r]],
        bookings: &[&island.bookings[r]],
    };
    stats::compute(sources, SiteOffset::vietnam()).unwrap()
}

#[test]
fn two_replicas_with_the_same_records_compute_the_same_figures() {
    let island = island();
    let first = figures(&island, 0);
    assert_eq!(first, figures(&island, 1));

    let mut a = doc(7);
    let mut b = doc(8);
    stats::record(&mut a, &first).unwrap();
    stats::record(&mut b, &figures(&island, 1)).unwrap();
    a.merge(&mut b).unwrap();
    assert_eq!(
        stats::recorded(&a).unwrap(),
        first,
        "recording the same figures twice merges cleanly"
    );
}

#[test]
fn figures_count_port_flow_lodging_and_spending_by_local_day() {
    let island = island();
    let stats = figures(&island, 0);
    let day = |d: &str| stats.days.get(&date(d)).cloned().unwrap_or_default();

    // Arrivals at 07:00, 12:00, 17:00, 22:00 (30 April) and 03:00, 08:00 (1 May), island time.
    assert_eq!(day("2025-04-30").port_arrivals, 4);
    assert_eq!(day("2025-05-01").port_arrivals, 2);
    let visitors: u64 = stats.days.values().map(|d| d.visitor_arrivals).sum();
    assert_eq!(visitors, 4, "passes 0 and 3 belong to residents");

    assert_eq!(day("2025-04-30").rooms_occupied, 1);
    assert_eq!(day("2025-05-01").rooms_occupied, 2);
    assert_eq!(day("2025-05-02").rooms_occupied, 2, "101 again and 102");
    assert_eq!(day("2025-05-01").rooms_total, 3);
    assert_eq!(day("2025-05-01").occupancy_bp(), 6_666);
    assert_eq!(day("2025-05-01").lodging_revenue_vnd, 800_000);
    assert_eq!(day("2025-04-30").lodging_registrations, 3);

    let april = day("2025-04-30");
    assert_eq!(april.tourism_payments_vnd, 500_000);
    assert_eq!(april.visitor_spending_vnd, 4 * 350_000 + 500_000);
    assert_eq!(april.tax_base_vnd, 400_000 + 500_000);
    assert_eq!(april.attraction_visits, 6);
}

#[test]
fn a_record_held_by_two_documents_counts_once() {
    let island = island();
    let sources = Sources {
        tickets: &[&island.tickets[0], &island.tickets[1]],
        cards: &[&island.cards[0], &island.cards[1]],
        lodging: &[&island.lodging[0], &island.lodging[1]],
        bookings: &[&island.bookings[0], &island.bookings[1]],
    };
    assert_eq!(
        stats::compute(sources, SiteOffset::vietnam()).unwrap(),
        figures(&island, 0)
    );
}
