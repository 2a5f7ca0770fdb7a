//! Hot-path costs of `crdt_model::records` on this machine, and the saved size of each record
//! type. Run with `cargo bench -p crdt-model --bench records`.
//!
//! Each figure is the mean over a batch, with the document at a realistic size: a port box
//! holding a holiday's passes, a wallet with a season of payments, a resort's bookings.

#![expect(clippy::unwrap_used, reason = "a benchmark stops at the first failure")]
#![expect(clippy::print_stdout, reason = "a benchmark prints its figures")]

#[path = "../tests/records_common/mod.rs"]
mod records_common;

use std::hint::black_box;
use std::time::Instant;

use automerge::AutoCommit;
use crdt_model::records::bookings::{self, Booking};
use crdt_model::records::cards::{self, Attendance, Card, Session};
use crdt_model::records::health::{self, PatientSummary};
use crdt_model::records::lodging::{self, Establishment, Room};
use crdt_model::records::radio::{self, Priority};
use crdt_model::records::sports::{self, Fixture, ResultEntry, Score, Sport, Tournament};
use crdt_model::records::store::{self, Record};
use crdt_model::records::tickets::{self, Pass, Redemption};
use crdt_model::records::values::NodeRef;
use crdt_model::records::wallet::{self, Payment, Purpose, TopUp, TopUpMethod, Wallet};
use records_common::*;

/// Passes already sold at the port box before the measured redemptions (a holiday day).
const PASSES: usize = 2_000;
const BATCH: usize = 500;

fn per_op(label: &str, n: usize, started: Instant) {
    let micros = started.elapsed().as_secs_f64() * 1e6 / n as f64;
    println!("{label:<58} {micros:>9.1} µs");
}

fn redemption(port: &NodeRef, ms: i64) -> Redemption {
    Redemption {
        node: port.clone(),
        gate: id("gate-2"),
        by: id("scanner-07"),
        at: at(ms),
    }
}

fn bench_redemption() {
    let port = node("port-tam-thanh");
    let mut doc = doc(1);
    for p in 0..PASSES {
        tickets::sell(
            &mut doc,
            &pass(&format!("pass-{p:05}"), &port, 2, p % 4 == 0),
            &port,
        )
        .unwrap();
    }
    doc.commit();

    let started = Instant::now();
    for p in 0..BATCH {
        let pass_id = id(&format!("pass-{p:05}"));
        let redemption_id = id(&format!("r-{p:05}"));
        tickets::redeem(
            &mut doc,
            &pass_id,
            &id("e0"),
            &redemption_id,
            &redemption(&port, HOUR_MS),
        )
        .unwrap();
        doc.commit();
    }
    per_op(
        &format!("gate redemption: validate + record + commit ({PASSES} passes)"),
        BATCH,
        started,
    );

    let started = Instant::now();
    black_box(tickets::conflicts(&doc).unwrap());
    per_op(
        &format!("double-redemption scan of {PASSES} passes (once)"),
        1,
        started,
    );

    let before = doc.save().len();
    doc.save_incremental();
    let pass_id = id(&format!("pass-{:05}", BATCH));
    tickets::redeem(
        &mut doc,
        &pass_id,
        &id("e0"),
        &id("r-extra"),
        &redemption(&port, HOUR_MS),
    )
    .unwrap();
    doc.commit();
    let change = doc.save_incremental().len();
    let after = doc.save().len();
    let growth = after as i64 - before as i64;
    println!(
        "{:<58} {:>9} B",
        "one redemption: growth of the saved document", growth
    );
    println!(
        "{:<58} {:>9} B",
        "one redemption: its automerge change (as synced)", change
    );
}

fn bench_payment() {
    let home = node("hall-ngu-phung");
    let clinic = node("ttyt-phu-quy");
    let wallet_id = id("vi-060201001234");
    let mut doc = doc(2);
    wallet::open(
        &mut doc,
        &Wallet {
            id: wallet_id.clone(),
            card: id("the-1"),
            owner: home.clone(),
            opened_at: at(0),
        },
    )
    .unwrap();
    let top_up = TopUp {
        node: home.clone(),
        amount: vnd(100_000_000),
        method: TopUpMethod::BankTransfer,
        at: at(0),
    };
    wallet::top_up(&mut doc, &wallet_id, &id("nap-0"), &top_up).unwrap();
    wallet::move_allowance(
        &mut doc,
        &wallet_id,
        &id("mv-0"),
        &home,
        &clinic,
        vnd(50_000_000),
        at(0),
    )
    .unwrap();
    doc.commit();

    let started = Instant::now();
    for i in 0..BATCH {
        let payment = Payment {
            node: clinic.clone(),
            amount: vnd(35_000),
            purpose: Purpose::MedicalFee,
            merchant: id("ttyt-phu-quy"),
            at: at(HOUR_MS),
        };
        wallet::pay(&mut doc, &wallet_id, &id(&format!("tt-{i:05}")), &payment).unwrap();
        doc.commit();
    }
    per_op(
        &format!("wallet payment: check allowance + record + commit (0..{BATCH} in ledger)"),
        BATCH,
        started,
    );

    let before = doc.save().len();
    let payment = Payment {
        node: clinic.clone(),
        amount: vnd(35_000),
        purpose: Purpose::Tourism,
        merchant: id("lan-bien"),
        at: at(HOUR_MS),
    };
    wallet::pay(&mut doc, &wallet_id, &id("tt-extra"), &payment).unwrap();
    doc.commit();
    let growth = doc.save().len() as i64 - before as i64;
    println!(
        "{:<58} {:>9} B",
        "one payment: growth of the saved document", growth
    );
}

fn bench_booking() {
    let resort = node("resort-trieu-duong");
    let mut doc = doc(3);
    let started = Instant::now();
    for i in 0..BATCH {
        let booking = booking(
            &format!("bk-{i:05}"),
            &format!("room-{}", i % 60),
            &resort,
            &node("port"),
            (i % 30) as u64,
            2,
        );
        bookings::request(&mut doc, &booking).unwrap();
        doc.commit();
    }
    per_op(
        &format!("booking request: validate + record + commit (0..{BATCH} held)"),
        BATCH,
        started,
    );

    let started = Instant::now();
    let answers = bookings::answer_pending(&mut doc, &resort, at(DAY_MS)).unwrap();
    doc.commit();
    per_op(
        &format!("owner answering a pending request ({BATCH} pending)"),
        answers.len(),
        started,
    );
}

/// Saved size of a document holding one record of a type, and what each of 50 more adds on
/// average (a single extra record can even shrink the compressed save).
fn size_of<R: Record>(label: &str, make: impl Fn(&str) -> R, insert: impl Fn(&mut AutoCommit, &R)) {
    let mut doc = doc(9);
    insert(&mut doc, &make("one"));
    let one = doc.save().len() as i64;
    for i in 0..50 {
        insert(&mut doc, &make(&format!("more-{i}")));
    }
    let more = (doc.save().len() as i64 - one) / 50;
    println!("{label:<28} {one:>8} B alone {more:>8} B each more");
}

fn bench_sizes() {
    println!("\nsaved size per record type (automerge, compressed columns)");
    let hub = node("hub");
    size_of(
        "Pass (3 entitlements)",
        |s| pass(&format!("pass-{s}"), &hub, 2, false),
        |d, r: &Pass| tickets::sell(d, r, &hub).unwrap(),
    );
    size_of(
        "Card",
        |s| card(&format!("the-{s}"), &hub),
        |d, r: &Card| store::insert(d, r).unwrap(),
    );
    size_of(
        "Wallet (empty ledger)",
        |s| Wallet {
            id: id(&format!("vi-{s}")),
            card: id("the-1"),
            owner: hub.clone(),
            opened_at: at(0),
        },
        |d, r: &Wallet| wallet::open(d, r).unwrap(),
    );
    size_of(
        "Attendance",
        |s| Attendance {
            id: id(&format!("att-{s}")),
            card: id("the-1"),
            session: Session::Meeting,
            event: id("hop"),
            at: at(0),
            node: hub.clone(),
        },
        |d, r: &Attendance| {
            if store::get::<Card>(d, &id("the-1")).unwrap().is_none() {
                store::insert(d, &card("the-1", &hub)).unwrap();
            }
            cards::attend(d, r).unwrap();
        },
    );
    size_of(
        "Establishment",
        |s| Establishment {
            id: id(&format!("ks-{s}")),
            ..establishment(&hub)
        },
        |d, r: &Establishment| store::insert(d, r).unwrap(),
    );
    size_of(
        "Room",
        |s| room(&format!("room-{s}"), 450_000),
        |d, r: &Room| store::insert(d, r).unwrap(),
    );
    size_of(
        "Registration",
        |s| registration(&format!("reg-{s}"), "101", &hub, "2025-04-30", 2),
        |d, r| {
            if store::get::<Room>(d, &id("101")).unwrap().is_none() {
                store::insert(d, &establishment(&hub)).unwrap();
                store::insert(d, &room("101", 450_000)).unwrap();
            }
            lodging::check_in(d, r).unwrap();
        },
    );
    size_of(
        "Booking",
        |s| booking(&format!("bk-{s}"), "101", &hub, &hub, 0, 2),
        |d, r: &Booking| bookings::request(d, r).unwrap(),
    );
    size_of(
        "AttractionCheckIn",
        |s| check_in(&format!("ci-{s}"), &hub),
        |d, r| bookings::check_in(d, r).unwrap(),
    );
    size_of(
        "PatientSummary (IPS)",
        |s| summary(&format!("hs-{s}")),
        |d, r: &PatientSummary| store::insert(d, r).unwrap(),
    );
    size_of(
        "Appointment",
        |s| appointment(&format!("hen-{s}"), &hub, &hub),
        |d, r| health::request_appointment(d, r).unwrap(),
    );
    size_of(
        "Consent",
        |s| consent(&format!("dy-{s}"), &hub),
        |d, r| store::insert(d, r).unwrap(),
    );
    size_of(
        "Tournament",
        |s| Tournament {
            id: id(&format!("giai-{s}")),
            name: text("Giải bóng đá"),
            sport: Sport::Football,
            commune: id("tam-thanh"),
            starts: date("2025-04-26"),
            ends: date("2025-05-10"),
            organiser: hub.clone(),
        },
        |d, r| store::insert(d, r).unwrap(),
    );
    size_of(
        "Fixture (+1 result)",
        |s| Fixture {
            id: id(&format!("tran-{s}")),
            tournament: id("giai-1"),
            home: id("doi-a"),
            away: id("doi-b"),
            kickoff: at(0),
            venue: text("Sân huyện"),
            referees: [id("tt-1")].into(),
        },
        |d, r: &Fixture| {
            sports::schedule(d, r).unwrap();
            let entry = ResultEntry {
                score: Score { home: 2, away: 1 },
                at: at(HOUR_MS),
                node: hub.clone(),
            };
            sports::enter_result(d, &r.id, &id("tt-1"), &entry).unwrap();
        },
    );
    size_of(
        "Announcement",
        |s| announcement(&format!("tb-{s}"), &hub, Priority::Emergency),
        |d, r| radio::issue(d, r).unwrap(),
    );
}

fn main() {
    println!("crdt_model::records hot paths (mean per operation)");
    bench_redemption();
    bench_payment();
    bench_booking();
    bench_sizes();
}
