//! Realistic Phú Quý records for the records tests and benchmark, and replica helpers.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

use automerge::{ActorId, AutoCommit};
use chrono::NaiveDate;
use crdt_model::records::bookings::{
    self, AttractionCheckIn, Booking, ResourceKind, Vehicle, VehicleKind,
};
use crdt_model::records::cards::{Card, Membership, Profile, StaffEnrolment, StudentEnrolment};
use crdt_model::records::health::{
    Allergy, Appointment, Consent, ConsentPurpose, Criticality, FamilyDoctor, Immunization,
    Medication, Patient, PatientSummary, Problem, Sex,
};
use crdt_model::records::lodging::{Establishment, EstablishmentKind, Registration, Room};
use crdt_model::records::radio::{Announcement, Cluster, Priority};
use crdt_model::records::tickets::{
    Entitlement, EntitlementKind, Holder, Pass, Sailing, SeatClass,
};
use crdt_model::records::values::{
    DateRange, IdCard, IdDocument, NodeRef, PersonName, Phone, RecordId, Text, Timestamp, Vnd,
};

/// 2025-04-30 00:00 UTC (07:00 on the island), the first day of the holiday peak.
pub const HOLIDAY_MS: i64 = 1_745_971_200_000;
pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 24 * HOUR_MS;

pub fn id(s: &str) -> RecordId {
    RecordId::new("test", s).unwrap()
}

pub fn node(s: &str) -> NodeRef {
    NodeRef::new("test", s).unwrap()
}

pub fn node_n(i: usize) -> NodeRef {
    node(&format!("box-{i}"))
}

pub fn at(offset_ms: i64) -> Timestamp {
    Timestamp::from_millis("test", HOLIDAY_MS + offset_ms).unwrap()
}

pub fn text(s: &str) -> Text {
    Text::new("test", s).unwrap()
}

pub fn name(s: &str) -> PersonName {
    PersonName::new("test", s).unwrap()
}

pub fn vnd(n: u64) -> Vnd {
    Vnd::new("test", i128::from(n)).unwrap()
}

pub fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
}

pub fn cccd(s: &str) -> IdDocument {
    IdDocument::Citizen(IdCard::new("test", s).unwrap())
}

/// A fresh document whose automerge actor is `i` (distinct per replica, deterministic).
pub fn doc(i: usize) -> AutoCommit {
    AutoCommit::new().with_actor(ActorId::from(vec![1, u8::try_from(i).unwrap()]))
}

/// `n` replicas of `base`, each with its own actor.
pub fn replicas(base: &mut AutoCommit, n: usize) -> Vec<AutoCommit> {
    let bytes = base.save();
    (0..n)
        .map(|i| {
            AutoCommit::load(&bytes)
                .unwrap()
                .with_actor(ActorId::from(vec![2, i as u8]))
        })
        .collect()
}

/// Brings `to` up to date with `from`.
pub fn merge(docs: &mut [AutoCommit], from: usize, to: usize) {
    if from == to {
        return;
    }
    let mut source = docs[from].fork();
    docs[to].merge(&mut source).unwrap();
}

/// Merges every replica into every other.
pub fn merge_all(docs: &mut [AutoCommit]) {
    for from in 0..docs.len() {
        merge(docs, from, 0);
    }
    for to in 1..docs.len() {
        merge(docs, 0, to);
    }
}

pub fn holder(resident: bool) -> Holder {
    Holder {
        name: name("Nguyễn Thị Hoa"),
        document: if resident {
            cccd("060190001234")
        } else {
            IdDocument::passport("test", "M12345678", "KR").unwrap()
        },
        phone: Some(Phone::new("test", "0912 345 678").unwrap()),
        resident,
    }
}

/// A pass with `singles` single-use port entries and one two-use attraction entry, whose
/// rights belong to `right`.
pub fn pass(pass_id: &str, right: &NodeRef, singles: usize, resident: bool) -> Pass {
    let mut entitlements = BTreeMap::new();
    for i in 0..singles {
        let kind = if i % 2 == 0 {
            EntitlementKind::PortEntry
        } else {
            EntitlementKind::PortExit
        };
        let entitlement = Entitlement::new(kind, at(0), at(30 * DAY_MS), 1, right.clone()).unwrap();
        entitlements.insert(id(&format!("e{i}")), entitlement);
    }
    let museum = EntitlementKind::AttractionEntry {
        attraction: id("chua-linh-son"),
    };
    let entitlement = Entitlement::new(museum, at(0), at(30 * DAY_MS), 2, right.clone()).unwrap();
    entitlements.insert(id("multi"), entitlement);
    Pass {
        id: id(pass_id),
        holder: holder(resident),
        issuer: right.clone(),
        sold_at: at(HOUR_MS),
        price: vnd(350_000),
        entitlements,
        transferred_at: None,
    }
}

pub fn ferry_pass(pass_id: &str, right: &NodeRef, sailing: &str) -> Pass {
    let kind = EntitlementKind::FerryTrip {
        route: id("phan-thiet-phu-quy"),
        sailing: id(sailing),
        seat_class: SeatClass::Economy,
    };
    let entitlement = Entitlement::new(kind, at(0), at(DAY_MS), 1, right.clone()).unwrap();
    Pass {
        id: id(pass_id),
        holder: holder(false),
        issuer: right.clone(),
        sold_at: at(HOUR_MS),
        price: vnd(380_000),
        entitlements: BTreeMap::from([(id("trip"), entitlement)]),
        transferred_at: None,
    }
}

pub fn sailing(sailing_id: &str, operator: &NodeRef) -> Sailing {
    Sailing {
        id: id(sailing_id),
        route: id("phan-thiet-phu-quy"),
        vessel: text("Superdong Phú Quý I"),
        departs_at: at(7 * HOUR_MS),
        operator: operator.clone(),
    }
}

pub fn card(card_id: &str, issuer: &NodeRef) -> Card {
    Card {
        id: id(card_id),
        citizen_id: IdCard::new("test", "060201001234").unwrap(),
        name: name("Trần Văn Bình"),
        birth_date: date("1988-03-14"),
        commune: id("ngu-phung"),
        issuer: issuer.clone(),
        issued_at: at(0),
        profile: Profile {
            title: Some(text("Cán bộ văn hoá")),
            organisation: Some(text("UBND xã Ngũ Phụng")),
            phone: Some(Phone::new("test", "+84 252 3769 123").unwrap()),
            email: None,
        },
        signing_key: None,
        memberships: BTreeMap::from([(
            id("hoi-nghe-ca"),
            Membership {
                organisation: text("Hội Nghề cá Phú Quý"),
                role: None,
                since: date("2015-01-01"),
            },
        )]),
        student: None,
        staff: Some(StaffEnrolment {
            agency: id("ubnd-ngu-phung"),
            position: text("Công chức"),
            doors: BTreeSet::from([id("door-hall-main")]),
        }),
    }
}

pub fn student_card(card_id: &str, issuer: &NodeRef) -> Card {
    let mut card = card(card_id, issuer);
    card.staff = None;
    card.student = Some(StudentEnrolment {
        school: id("thpt-ngu-phung"),
        class: id("10a1"),
        school_year: 2025,
    });
    card
}

pub fn establishment(owner: &NodeRef) -> Establishment {
    Establishment {
        id: id("ks-hai-duong"),
        name: text("Khách sạn Hải Dương"),
        kind: EstablishmentKind::Hotel,
        commune: id("tam-thanh"),
        address: text("17 Ngô Quyền, Tam Thanh"),
        phone: Some(Phone::new("test", "0252 3769 456").unwrap()),
        licence: Some(id("gp-2023-015")),
        owner: owner.clone(),
    }
}

pub fn room(room_id: &str, rate: u64) -> Room {
    Room {
        id: id(room_id),
        establishment: id("ks-hai-duong"),
        number: text(room_id),
        beds: 2,
        nightly_rate: vnd(rate),
    }
}

pub fn registration(
    reg_id: &str,
    room_id: &str,
    owner: &NodeRef,
    first_night: &str,
    nights: i64,
) -> Registration {
    let start = date(first_night);
    Registration {
        id: id(reg_id),
        establishment: id("ks-hai-duong"),
        room: id(room_id),
        guest: name("Kim Min-jun"),
        document: IdDocument::passport("test", "M87654321", "KR").unwrap(),
        stay: DateRange::new("test", start, start + chrono::Days::new(nights as u64)).unwrap(),
        checked_in_at: at(8 * HOUR_MS),
        checked_out_at: None,
        node: owner.clone(),
    }
}

pub fn vehicle(owner: &NodeRef) -> Vehicle {
    Vehicle {
        id: id("xe-59x1-12345"),
        kind: VehicleKind::Motorbike,
        plate: text("86B1-123.45"),
        daily_rate: vnd(100_000),
        commune: id("tam-thanh"),
        owner: owner.clone(),
    }
}

pub fn booking(
    booking_id: &str,
    resource: &str,
    owner: &NodeRef,
    by: &NodeRef,
    start_day: u64,
    nights: u64,
) -> Booking {
    let start = date("2025-04-30") + chrono::Days::new(start_day);
    Booking {
        id: id(booking_id),
        resource_kind: ResourceKind::Room,
        resource: id(resource),
        owner: owner.clone(),
        guest: name("Lê Thu Trang"),
        phone: None,
        stay: DateRange::new("test", start, start + chrono::Days::new(nights)).unwrap(),
        price: vnd(450_000 * nights),
        requested_by: by.clone(),
        requested_at: at(i64::try_from(start_day).unwrap() * HOUR_MS),
        answer: None,
        cancelled_at: None,
    }
}

pub fn check_in(check_in_id: &str, by: &NodeRef) -> AttractionCheckIn {
    AttractionCheckIn {
        id: id(check_in_id),
        attraction: id("cot-co-phu-quy"),
        pass: Some(id("pass-1")),
        visitors: 3,
        at: at(10 * HOUR_MS),
        node: by.clone(),
    }
}

pub fn summary(summary_id: &str) -> PatientSummary {
    PatientSummary {
        id: id(summary_id),
        patient: Patient {
            citizen_id: IdCard::new("test", "060190001234").unwrap(),
            name: name("Nguyễn Thị Hoa"),
            birth_date: date("1990-07-02"),
            sex: Sex::Female,
            commune: id("long-hai"),
            phone: None,
        },
        allergies: BTreeMap::from([(
            id("a1"),
            Allergy {
                substance: text("Penicillin"),
                criticality: Criticality::High,
                reaction: Some(text("Phát ban")),
                recorded: date("2019-05-01"),
            },
        )]),
        medications: BTreeMap::from([(
            id("m1"),
            Medication {
                name: text("Metformin 500 mg"),
                dosage: text("1 viên x 2 lần/ngày"),
                since: date("2022-01-10"),
                until: None,
            },
        )]),
        problems: BTreeMap::from([(
            id("p1"),
            Problem {
                description: text("Đái tháo đường type 2"),
                icd10: Some(id("e11")),
                onset: date("2021-11-20"),
                active: true,
            },
        )]),
        immunizations: BTreeMap::from([(
            id("i1"),
            Immunization {
                vaccine: text("Viêm gan B"),
                date: date("2020-03-03"),
                dose: 3,
            },
        )]),
        none_known_allergies: false,
        family_doctor: Some(FamilyDoctor {
            practitioner: id("bs-pham-an"),
            name: name("Phạm An"),
            clinic: id("tyt-long-hai"),
            since: date("2023-06-01"),
        }),
        updated_at: at(0),
    }
}

pub fn appointment(appointment_id: &str, clinic_node: &NodeRef, by: &NodeRef) -> Appointment {
    Appointment {
        id: id(appointment_id),
        summary: id("hs-1"),
        clinic: id("ttyt-phu-quy"),
        clinic_node: clinic_node.clone(),
        slot: at(DAY_MS + 2 * HOUR_MS),
        minutes: 20,
        teleconsultation: true,
        reason: text("Tái khám đường huyết"),
        requested_by: by.clone(),
        requested_at: at(HOUR_MS),
        accepted: None,
        answered_at: None,
    }
}

pub fn consent(consent_id: &str, by: &NodeRef) -> Consent {
    Consent {
        id: id(consent_id),
        summary: id("hs-1"),
        grantee: id("bv-binh-thuan"),
        purpose: ConsentPurpose::Teleconsultation,
        granted_at: at(HOUR_MS),
        revoked_at: None,
        node: by.clone(),
    }
}

pub fn cluster(cluster_id: &str, commune: &str, station: &NodeRef) -> Cluster {
    Cluster {
        id: id(cluster_id),
        commune: id(commune),
        name: text("Cụm loa chợ Tam Thanh"),
        station: station.clone(),
    }
}

pub fn announcement(announcement_id: &str, author: &NodeRef, priority: Priority) -> Announcement {
    Announcement {
        id: id(announcement_id),
        text_vi: text("Tàu cao tốc chuyến 7 giờ sáng mai tạm dừng do gió cấp 6."),
        text_en: Some(text(
            "Tomorrow's 7 a.m. high-speed ferry is suspended: Beaufort 6 winds.",
        )),
        priority,
        communes: BTreeSet::from([id("tam-thanh"), id("ngu-phung")]),
        play_from: at(0),
        play_until: at(DAY_MS),
        author: author.clone(),
        created_at: at(0),
        replaces: None,
        cancelled: None,
    }
}

/// Requests a booking, keeping tests short.
pub fn request(doc: &mut AutoCommit, booking: &Booking) {
    bookings::request(doc, booking).unwrap();
}
