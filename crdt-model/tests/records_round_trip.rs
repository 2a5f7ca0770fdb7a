//! Every record type survives save, load and merge unchanged.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod records_common;

use automerge::AutoCommit;
use crdt_model::records::bookings::{self, AttractionCheckIn, Booking, Vehicle};
use crdt_model::records::cards::{self, Attendance, Card, DoorEvent, Session};
use crdt_model::records::health::{self, Appointment, Consent, Encounter, PatientSummary};
use crdt_model::records::lodging::{self, Establishment, Registration, Room};
use crdt_model::records::loyalty::{self, Offer, Stamp};
use crdt_model::records::radio::{self, Announcement, Cluster, DeliveryState, Priority};
use crdt_model::records::sports::{
    self, Fixture, Player, ResultEntry, Score, Sport, Team, Tournament,
};
use crdt_model::records::stats::{self, DayRecord};
use crdt_model::records::store::{self, Record, Scope};
use crdt_model::records::tickets::{self, Decision, Pass, Redemption, Resolution, Sailing};
use crdt_model::records::tours::{self, Stop, TourContract};
use crdt_model::records::values::{NodeRef, SiteOffset};
use crdt_model::records::wallet::{self, Payment, Purpose, TopUp, TopUpMethod, Wallet};
use records_common::*;

/// Saves and loads `doc`, and merges it into an empty document, checking that `view` reads
/// the same from all three.
fn survives<T: PartialEq + std::fmt::Debug>(doc: &mut AutoCommit, view: impl Fn(&AutoCommit) -> T) {
    let before = view(doc);
    let loaded = AutoCommit::load(&doc.save()).unwrap();
    assert_eq!(view(&loaded), before, "after save and load");

    let mut other = records_common::doc(99);
    other.merge(doc).unwrap();
    assert_eq!(view(&other), before, "after merge into an empty document");
}

fn all<R: Record>(doc: &AutoCommit) -> Vec<R> {
    store::list(doc).unwrap()
}

#[test]
fn every_record_type_names_its_scope() {
    assert_eq!(Pass::SCOPE_NAME, "tickets");
    assert_eq!(Sailing::SCOPE_NAME, "tickets");
    assert_eq!(Card::SCOPE_NAME, "cards");
    assert_eq!(Wallet::SCOPE_NAME, "cards");
    assert_eq!(Attendance::SCOPE_NAME, "cards");
    assert_eq!(DoorEvent::SCOPE_NAME, "cards");
    assert_eq!(Booking::SCOPE_NAME, "bookings");
    assert_eq!(Vehicle::SCOPE_NAME, "bookings");
    assert_eq!(AttractionCheckIn::SCOPE_NAME, "bookings");
    assert_eq!(TourContract::SCOPE_NAME, "bookings");
    assert_eq!(Offer::SCOPE_NAME, "bookings");
    assert_eq!(Stamp::SCOPE_NAME, "bookings");
    assert_eq!(Establishment::SCOPE_NAME, "lodging");
    assert_eq!(Room::SCOPE_NAME, "lodging");
    assert_eq!(Registration::SCOPE_NAME, "lodging");
    assert_eq!(PatientSummary::SCOPE_NAME, "health");
    assert_eq!(Encounter::SCOPE_NAME, "health");
    assert_eq!(Appointment::SCOPE_NAME, "health");
    assert_eq!(Consent::SCOPE_NAME, "health");
    assert_eq!(Tournament::SCOPE_NAME, "sports");
    assert_eq!(Team::SCOPE_NAME, "sports");
    assert_eq!(Player::SCOPE_NAME, "sports");
    assert_eq!(Fixture::SCOPE_NAME, "sports");
    assert_eq!(Announcement::SCOPE_NAME, "radio");
    assert_eq!(Cluster::SCOPE_NAME, "radio");
    assert_eq!(DayRecord::SCOPE_NAME, "stats");
}

#[test]
fn a_document_refuses_records_of_another_scope() {
    let mut doc = doc(1);
    store::put(&mut doc, &card("the-1", &node("hall"))).unwrap();
    let err = store::put(&mut doc, &summary("hs-1")).unwrap_err();
    assert!(
        matches!(err, store::StoreError::ScopeMismatch { .. }),
        "{err}"
    );
    assert_eq!(store::scope_of(&doc), Some(Scope::Cards));
}

#[test]
fn tickets_survive_save_load_and_merge() {
    let port = node("port-tam-thanh");
    let mut doc = doc(1);
    tickets::create_sailing(
        &mut doc,
        &sailing("s-0430-0700", &port),
        &[(tickets::SeatClass::Economy, 300)],
    )
    .unwrap();
    tickets::sell(&mut doc, &ferry_pass("pass-f", &port, "s-0430-0700"), &port).unwrap();
    tickets::sell(&mut doc, &pass("pass-1", &port, 3, false), &port).unwrap();
    let gate = |by: &str| Redemption {
        node: port.clone(),
        gate: id("gate-1"),
        by: id(by),
        at: at(2 * HOUR_MS),
    };
    tickets::redeem(
        &mut doc,
        &id("pass-1"),
        &id("e0"),
        &id("r1"),
        &gate("staff-an"),
    )
    .unwrap();
    tickets::redeem(
        &mut doc,
        &id("pass-1"),
        &id("multi"),
        &id("r2"),
        &gate("scanner-3"),
    )
    .unwrap();
    tickets::delegate(
        &mut doc,
        &id("pass-1"),
        &id("e1"),
        &port,
        Some(&node("hall-ngu-phung")),
    )
    .unwrap();

    survives(&mut doc, |d| {
        let uses = tickets::uses(d, &id("pass-1"), &id("e0")).unwrap();
        let seats =
            tickets::seats(d, &id("s-0430-0700"), tickets::SeatClass::Economy, &port).unwrap();
        (
            all::<Pass>(d),
            all::<Sailing>(d),
            uses,
            seats,
            tickets::conflicts(d).unwrap(),
        )
    });
}

#[test]
fn a_conflict_and_its_resolution_survive_save_load_and_merge() {
    let port = node("port-tam-thanh");
    let hall = node("hall-ngu-phung");
    let mut base = doc(1);
    tickets::sell(&mut base, &pass("pass-1", &port, 1, true), &port).unwrap();
    tickets::delegate(&mut base, &id("pass-1"), &id("e0"), &port, Some(&hall)).unwrap();
    let mut docs = replicas(&mut base, 2);
    tickets::delegate(&mut docs[0], &id("pass-1"), &id("e0"), &port, None).unwrap();
    let use_at = |n: &NodeRef| Redemption {
        node: n.clone(),
        gate: id("gate-1"),
        by: id("staff"),
        at: at(HOUR_MS),
    };
    tickets::redeem(
        &mut docs[0],
        &id("pass-1"),
        &id("e0"),
        &id("r-port"),
        &use_at(&port),
    )
    .unwrap();
    tickets::redeem(
        &mut docs[1],
        &id("pass-1"),
        &id("e0"),
        &id("r-hall"),
        &use_at(&hall),
    )
    .unwrap();
    merge_all(&mut docs);

    let conflict = tickets::conflicts(&docs[0]).unwrap().remove(0);
    let resolution = Resolution {
        decision: Decision::ChargeHolder,
        by: id("staff-binh"),
        node: port.clone(),
        at: at(3 * HOUR_MS),
        note: Some(text("Khách lên tàu hai lần")),
        covers: Default::default(),
    };
    tickets::resolve(&mut docs[0], &conflict, resolution).unwrap();
    survives(&mut docs[0], |d| tickets::conflicts(d).unwrap());
}

#[test]
fn cards_and_wallets_survive_save_load_and_merge() {
    let hall = node("hall-ngu-phung");
    let mut doc = doc(1);
    let mut staff = card("the-1", &hall);
    staff.signing_key = Some(
        crdt_model::records::values::PublicKey::from_hex(
            "key",
            &hex::encode(
                ed25519_dalek::SigningKey::from_bytes(&[7; 32])
                    .verifying_key()
                    .to_bytes(),
            ),
        )
        .unwrap(),
    );
    store::insert(&mut doc, &staff).unwrap();
    store::insert(&mut doc, &student_card("the-2", &hall)).unwrap();
    let meeting = Attendance {
        id: id("att-1"),
        card: id("the-1"),
        session: Session::Meeting,
        event: id("hop-ubnd-0430"),
        at: at(HOUR_MS),
        node: hall.clone(),
    };
    cards::attend(&mut doc, &meeting).unwrap();
    assert!(
        cards::open_door(
            &mut doc,
            id("door-1"),
            &id("the-1"),
            id("door-hall-main"),
            hall.clone(),
            at(HOUR_MS)
        )
        .unwrap()
    );

    let wallet_id = id("vi-1");
    wallet::open(
        &mut doc,
        &Wallet {
            id: wallet_id.clone(),
            card: id("the-1"),
            owner: hall.clone(),
            opened_at: at(0),
        },
    )
    .unwrap();
    let top_up = TopUp {
        node: hall.clone(),
        amount: vnd(500_000),
        method: TopUpMethod::VietQr,
        at: at(HOUR_MS),
    };
    wallet::top_up(&mut doc, &wallet_id, &id("nap-1"), &top_up).unwrap();
    let payment = Payment {
        node: hall.clone(),
        amount: vnd(120_000),
        purpose: Purpose::Electricity,
        merchant: id("dien-luc-phu-quy"),
        at: at(2 * HOUR_MS),
    };
    wallet::pay(&mut doc, &wallet_id, &id("tt-1"), &payment).unwrap();
    wallet::move_allowance(
        &mut doc,
        &wallet_id,
        &id("mv-1"),
        &hall,
        &node("clinic"),
        vnd(100_000),
        at(3 * HOUR_MS),
    )
    .unwrap();

    survives(&mut doc, |d| {
        let payments = wallet::payments(d, &wallet_id).unwrap();
        let top_ups = wallet::top_ups(d, &wallet_id).unwrap();
        let balance = wallet::balance(d, &wallet_id).unwrap();
        (
            all::<Card>(d),
            all::<Attendance>(d),
            all::<DoorEvent>(d),
            all::<Wallet>(d),
            payments,
            top_ups,
            balance,
        )
    });
}

#[test]
fn lodging_survives_save_load_and_merge() {
    let hotel = node("ks-hai-duong");
    let mut doc = doc(1);
    store::insert(&mut doc, &establishment(&hotel)).unwrap();
    store::insert(&mut doc, &room("101", 450_000)).unwrap();
    lodging::check_in(
        &mut doc,
        &registration("reg-1", "101", &hotel, "2025-04-30", 2),
    )
    .unwrap();
    lodging::check_out(&mut doc, &id("reg-1"), &hotel, at(DAY_MS + 3 * HOUR_MS)).unwrap();

    survives(&mut doc, |d| {
        (
            all::<Establishment>(d),
            all::<Room>(d),
            all::<Registration>(d),
        )
    });
}

#[test]
fn bookings_tours_and_loyalty_survive_save_load_and_merge() {
    let hotel = node("ks-hai-duong");
    let shop = node("thue-xe-tam-thanh");
    let mut doc = doc(1);
    store::insert(&mut doc, &vehicle(&shop)).unwrap();
    request(
        &mut doc,
        &booking("bk-1", "101", &hotel, &node("port"), 0, 2),
    );
    bookings::confirm(&mut doc, &id("bk-1"), &hotel, at(HOUR_MS)).unwrap();
    bookings::check_in(&mut doc, &check_in("ci-1", &node("gate-cot-co"))).unwrap();

    let contract = TourContract {
        id: id("hd-tour-1"),
        agency: id("phu-quy-travel"),
        agency_node: node("agency"),
        visitor: name("Đỗ Minh Khang"),
        document: cccd("079201004321"),
        phone: None,
        price: vnd(2_500_000),
        starts: date("2025-05-01"),
        itinerary: [(
            id("d1-1"),
            Stop {
                day: 1,
                place: text("Chùa Linh Sơn"),
                activity: text("Tham quan"),
            },
        )]
        .into(),
        agency_signature: None,
        visitor_acceptance: None,
        cancelled_at: None,
    };
    tours::write_terms(&mut doc, &contract, &node("agency")).unwrap();
    tours::sign(&mut doc, &id("hd-tour-1"), &node("agency"), at(HOUR_MS)).unwrap();
    tours::accept(&mut doc, &id("hd-tour-1"), &node("port"), at(2 * HOUR_MS)).unwrap();

    let offer = Offer {
        id: id("uu-dai-he"),
        chain: id("chuoi-hai-san"),
        title: text("Giảm 10% bữa tối"),
        businesses: [id("quan-a"), id("quan-b")].into(),
        stamps_required: 1,
        valid_until: at(30 * DAY_MS),
        owner: node("chain"),
    };
    loyalty::create(&mut doc, &offer, 50).unwrap();
    let stamp = Stamp {
        id: id("st-1"),
        offer: offer.id.clone(),
        customer: id("the-1"),
        business: id("quan-a"),
        node: node("chain"),
        at: at(HOUR_MS),
    };
    loyalty::stamp(&mut doc, &stamp).unwrap();
    loyalty::redeem(
        &mut doc,
        &offer.id,
        &id("dung-1"),
        &id("the-1"),
        &node("chain"),
        at(2 * HOUR_MS),
    )
    .unwrap();

    survives(&mut doc, |d| {
        let remaining = loyalty::remaining(d, &id("uu-dai-he"), &node("chain")).unwrap();
        let status = store::fetch::<TourContract>(d, &id("hd-tour-1"))
            .unwrap()
            .status();
        (
            all::<Vehicle>(d),
            all::<Booking>(d),
            all::<AttractionCheckIn>(d),
            all::<TourContract>(d),
            all::<Offer>(d),
            all::<Stamp>(d),
            remaining,
            status,
        )
    });
}

#[test]
fn health_records_survive_save_load_and_merge() {
    let clinic = node("ttyt-phu-quy");
    let mut doc = doc(1);
    store::insert(&mut doc, &summary("hs-1")).unwrap();
    let encounter = Encounter {
        id: id("kb-1"),
        summary: id("hs-1"),
        clinic: id("ttyt-phu-quy"),
        practitioner: id("bs-pham-an"),
        at: at(HOUR_MS),
        reason: text("Sốt cao"),
        notes: text("Sốt 39 độ, chỉ định xét nghiệm sốt xuất huyết."),
        node: clinic.clone(),
    };
    store::insert(&mut doc, &encounter).unwrap();
    health::request_appointment(
        &mut doc,
        &appointment("hen-1", &clinic, &node("tyt-long-hai")),
    )
    .unwrap();
    health::answer(&mut doc, &id("hen-1"), &clinic, true, at(2 * HOUR_MS)).unwrap();
    store::insert(&mut doc, &consent("dy-1", &clinic)).unwrap();

    survives(&mut doc, |d| {
        (
            all::<PatientSummary>(d),
            all::<Encounter>(d),
            all::<Appointment>(d),
            all::<Consent>(d),
        )
    });
}

#[test]
fn sports_survive_save_load_and_merge() {
    let organiser = node("van-hoa-phu-quy");
    let mut doc = doc(1);
    let tournament = Tournament {
        id: id("giai-bong-da-2025"),
        name: text("Giải bóng đá các xã 2025"),
        sport: Sport::Football,
        commune: id("ngu-phung"),
        starts: date("2025-04-26"),
        ends: date("2025-05-10"),
        organiser: organiser.clone(),
    };
    store::insert(&mut doc, &tournament).unwrap();
    for (team, commune) in [("doi-tam-thanh", "tam-thanh"), ("doi-long-hai", "long-hai")] {
        store::insert(
            &mut doc,
            &Team {
                id: id(team),
                tournament: tournament.id.clone(),
                name: text(team),
                commune: id(commune),
            },
        )
        .unwrap();
    }
    store::insert(
        &mut doc,
        &Player {
            id: id("cau-thu-7"),
            team: id("doi-tam-thanh"),
            name: name("Huỳnh Tấn Phát"),
            shirt: 7,
            card: None,
        },
    )
    .unwrap();
    let fixture = Fixture {
        id: id("tran-1"),
        tournament: tournament.id.clone(),
        home: id("doi-tam-thanh"),
        away: id("doi-long-hai"),
        kickoff: at(9 * HOUR_MS),
        venue: text("Sân vận động huyện"),
        referees: [id("tt-1"), id("tt-2")].into(),
    };
    sports::schedule(&mut doc, &fixture).unwrap();
    let entry = ResultEntry {
        score: Score { home: 2, away: 1 },
        at: at(11 * HOUR_MS),
        node: organiser.clone(),
    };
    sports::enter_result(&mut doc, &fixture.id, &id("tt-1"), &entry).unwrap();

    survives(&mut doc, |d| {
        let result = sports::result(d, &id("tran-1")).unwrap();
        (
            all::<Tournament>(d),
            all::<Team>(d),
            all::<Player>(d),
            all::<Fixture>(d),
            result,
        )
    });
}

#[test]
fn announcements_survive_save_load_and_merge() {
    let station = node("dai-tam-thanh");
    let mut doc = doc(1);
    store::insert(&mut doc, &cluster("loa-cho", "tam-thanh", &station)).unwrap();
    radio::issue(
        &mut doc,
        &announcement("tb-1", &station, Priority::Emergency),
    )
    .unwrap();
    radio::report(
        &mut doc,
        &id("tb-1"),
        &id("loa-cho"),
        DeliveryState::Queued,
        at(60_000),
    )
    .unwrap();
    radio::report(
        &mut doc,
        &id("tb-1"),
        &id("loa-cho"),
        DeliveryState::Played,
        at(120_000),
    )
    .unwrap();

    survives(&mut doc, |d| {
        let delivery = radio::delivery(d, &id("tb-1")).unwrap();
        let playlist = radio::playlist(d, &id("tam-thanh"), at(HOUR_MS)).unwrap();
        (
            all::<Cluster>(d),
            all::<Announcement>(d),
            delivery,
            playlist,
        )
    });
}

#[test]
fn statistics_records_survive_save_load_and_merge() {
    let hotel = node("ks-hai-duong");
    let mut lodging_doc = records_common::doc(1);
    store::insert(&mut lodging_doc, &establishment(&hotel)).unwrap();
    store::insert(&mut lodging_doc, &room("101", 450_000)).unwrap();
    lodging::check_in(
        &mut lodging_doc,
        &registration("reg-1", "101", &hotel, "2025-04-30", 2),
    )
    .unwrap();
    let sources = stats::Sources {
        lodging: &[&lodging_doc],
        ..Default::default()
    };
    let figures = stats::compute(sources, SiteOffset::vietnam()).unwrap();

    let mut doc = records_common::doc(2);
    stats::record(&mut doc, &figures).unwrap();
    assert_eq!(stats::recorded(&doc).unwrap(), figures);
    survives(&mut doc, |d| {
        (all::<DayRecord>(d), stats::recorded(d).unwrap())
    });
}
