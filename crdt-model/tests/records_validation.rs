//! Every constructor and operation refuses bad input with a typed error naming the field.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod records_common;

use automerge::ROOT;
use automerge::transaction::Transactable;
use crdt_model::records::bookings::{self, BookingError};
use crdt_model::records::cards::{self, Attendance, CardError, Session};
use crdt_model::records::escrow::EscrowError;
use crdt_model::records::health::{self, HealthError};
use crdt_model::records::lodging::{self, LodgingError};
use crdt_model::records::loyalty::{self, LoyaltyError, Offer};
use crdt_model::records::radio::{self, Priority, RadioError};
use crdt_model::records::sports::{self, Fixture, SportsError};
use crdt_model::records::store::{self, StoreError};
use crdt_model::records::tickets::{self, Entitlement, EntitlementKind, Redemption, TicketError};
use crdt_model::records::values::{
    DateRange, IdCard, IdDocument, InputError, NodeRef, PersonName, Phone, PublicKey, RecordId,
    SiteOffset, Text, Timestamp, Vnd, parse_date,
};
use crdt_model::records::wallet::{self, Payment, Purpose, Wallet, WalletError};
use records_common::*;

fn field_of(err: &InputError) -> &'static str {
    match err {
        InputError::Id { field, .. }
        | InputError::Phone { field, .. }
        | InputError::IdCard { field, .. }
        | InputError::Text { field, .. }
        | InputError::Money { field, .. }
        | InputError::Date { field, .. }
        | InputError::Timestamp { field, .. }
        | InputError::Range { field, .. }
        | InputError::Choice { field, .. }
        | InputError::Number { field, .. }
        | InputError::Key { field, .. } => field,
        _ => "",
    }
}

#[test]
fn ids_must_be_short_lowercase_words() {
    for bad in ["", "Pass-1", "pass 1", "-pass", &"a".repeat(65), "vé-1"] {
        let err = RecordId::new("pass", bad).unwrap_err();
        assert!(
            matches!(err, InputError::Id { field: "pass", .. }),
            "{bad:?}: {err}"
        );
        assert!(err.to_string().contains("pass"), "{err}");
    }
    assert!(NodeRef::new("node", "Port").is_err());
    assert!(RecordId::new("pass", "pass-2025-0001").is_ok());
}

#[test]
fn phone_numbers_must_be_vietnamese() {
    for bad in [
        "12345",
        "0123456789",
        "091234567",
        "+1 555 0100",
        "09123456789",
        "0912a45678",
    ] {
        let err = Phone::new("phone", bad).unwrap_err();
        assert!(
            matches!(err, InputError::Phone { field: "phone", .. }),
            "{bad:?}: {err}"
        );
    }
    assert_eq!(
        Phone::new("phone", "+84 912 345 678").unwrap().as_str(),
        "0912345678"
    );
    assert_eq!(
        Phone::new("phone", "0252.3769.123").unwrap().as_str(),
        "02523769123"
    );
}

#[test]
fn citizen_id_numbers_have_twelve_digits_and_a_province() {
    for bad in [
        "06019000123",
        "0601900012345",
        "06019000123x",
        "000190001234",
        "097190001234",
    ] {
        let err = IdCard::new("citizen_id", bad).unwrap_err();
        assert!(
            matches!(
                err,
                InputError::IdCard {
                    field: "citizen_id",
                    ..
                }
            ),
            "{bad:?}: {err}"
        );
        assert!(err.to_string().contains(bad), "{err}");
    }
    assert!(IdCard::new("citizen_id", "060190001234").is_ok());
}

#[test]
fn text_must_be_trimmed_printable_and_bounded() {
    let cases = [
        ("", "is empty"),
        ("  ", "is empty"),
        (" Chào", "white space"),
        ("a\u{7}b", "control"),
    ];
    for (bad, reason) in cases {
        let err = Text::new("note", bad).unwrap_err();
        assert!(
            matches!(&err, InputError::Text { field: "note", .. }),
            "{bad:?}: {err}"
        );
        assert!(err.to_string().contains(reason), "{err}");
    }
    assert!(Text::bounded("title", &"á".repeat(11), 10).is_err());
    assert!(Text::new("note", "Tàu cao tốc tạm dừng.\nXin cảm ơn.").is_ok());
}

#[test]
fn person_names_hold_letters_only() {
    let err = PersonName::new("guest", "Nguyễn Văn 3").unwrap_err();
    assert!(
        matches!(err, InputError::Text { field: "guest", .. }),
        "{err}"
    );
    assert!(PersonName::new("guest", "Nguyễn Thị Hoa").is_ok());
    // Decomposed (NFD) Vietnamese is still a name.
    assert!(PersonName::new("guest", "Nguye\u{302}\u{303}n").is_ok());
}

#[test]
fn money_is_a_whole_non_negative_amount_of_vnd() {
    let err = Vnd::new("price", -1).unwrap_err();
    assert!(
        matches!(
            err,
            InputError::Money {
                field: "price",
                value: -1,
                ..
            }
        ),
        "{err}"
    );
    assert!(Vnd::new("price", 1_000_000_000_001).is_err());
    let err = Vnd::positive("amount", 0).unwrap_err();
    assert!(err.to_string().contains("more than zero"), "{err}");
}

#[test]
fn dates_times_and_ranges_are_checked() {
    assert!(matches!(
        parse_date("birth_date", "30/04/2025").unwrap_err(),
        InputError::Date {
            field: "birth_date",
            ..
        }
    ));
    assert!(matches!(
        parse_date("birth_date", "1850-01-01").unwrap_err(),
        InputError::Date { .. }
    ));
    assert!(matches!(
        Timestamp::from_millis("at", -5).unwrap_err(),
        InputError::Timestamp {
            field: "at",
            value: -5
        }
    ));
    let day = date("2025-04-30");
    let err = DateRange::new("stay", day, day).unwrap_err();
    assert!(
        matches!(err, InputError::Range { field: "stay", .. }),
        "{err}"
    );
    assert!(DateRange::new("stay", day, day + chrono::Days::new(400)).is_err());
    assert!(SiteOffset::from_minutes("offset", 15 * 60).is_err());
    assert_eq!(
        at(0).display(SiteOffset::vietnam()),
        "2025-04-30T07:00:00+07:00"
    );
}

#[test]
fn documents_and_keys_are_checked() {
    let err = IdDocument::passport("document", "m123", "KR").unwrap_err();
    assert!(
        matches!(
            err,
            InputError::Text {
                field: "document",
                ..
            }
        ),
        "{err}"
    );
    assert!(IdDocument::passport("document", "M1234567", "Korea").is_err());
    assert!(matches!(
        IdDocument::decode("document", "cmnd:123").unwrap_err(),
        InputError::Choice { .. }
    ));
    let err = PublicKey::from_hex("signing_key", "zz").unwrap_err();
    assert_eq!(field_of(&err), "signing_key");
}

#[test]
fn entitlements_need_a_window_and_a_use() {
    let port = node("port");
    let err = Entitlement::new(
        EntitlementKind::PortEntry,
        at(DAY_MS),
        at(0),
        1,
        port.clone(),
    )
    .unwrap_err();
    assert_eq!(field_of(&err), "valid_until");
    let err = Entitlement::new(EntitlementKind::PortEntry, at(0), at(DAY_MS), 0, port).unwrap_err();
    assert_eq!(field_of(&err), "max_uses");
}

#[test]
fn a_gate_refuses_what_the_rules_forbid() {
    let port = node("port-tam-thanh");
    let mut doc = doc(1);
    tickets::sell(&mut doc, &pass("pass-1", &port, 1, false), &port).unwrap();
    let gate = |n: &NodeRef, ms| Redemption {
        node: n.clone(),
        gate: id("gate-1"),
        by: id("staff"),
        at: at(ms),
    };

    let err = tickets::redeem(
        &mut doc,
        &id("pass-1"),
        &id("e0"),
        &id("r1"),
        &gate(&node("hall"), HOUR_MS),
    )
    .unwrap_err();
    assert!(matches!(err, TicketError::NotRightHolder { .. }), "{err}");
    let err = tickets::redeem(
        &mut doc,
        &id("pass-1"),
        &id("e0"),
        &id("r1"),
        &gate(&port, 31 * DAY_MS),
    )
    .unwrap_err();
    assert!(matches!(err, TicketError::Expired { .. }), "{err}");
    let err = tickets::redeem(
        &mut doc,
        &id("pass-1"),
        &id("nope"),
        &id("r1"),
        &gate(&port, HOUR_MS),
    )
    .unwrap_err();
    assert!(matches!(err, TicketError::NoEntitlement { .. }), "{err}");

    tickets::redeem(
        &mut doc,
        &id("pass-1"),
        &id("e0"),
        &id("r1"),
        &gate(&port, HOUR_MS),
    )
    .unwrap();
    let err = tickets::redeem(
        &mut doc,
        &id("pass-1"),
        &id("e0"),
        &id("r2"),
        &gate(&port, HOUR_MS),
    )
    .unwrap_err();
    assert!(matches!(err, TicketError::UsedUp { uses: 1, .. }), "{err}");
    let err = tickets::redeem(
        &mut doc,
        &id("pass-1"),
        &id("multi"),
        &id("r1"),
        &gate(&port, HOUR_MS),
    );
    assert!(err.is_ok(), "redemption ids are per entitlement");

    let err = tickets::delegate(
        &mut doc,
        &id("pass-1"),
        &id("e0"),
        &node("hall"),
        Some(&port),
    )
    .unwrap_err();
    assert!(matches!(err, TicketError::NotRightOwner { .. }), "{err}");
    let refund = tickets::Refund {
        at: at(HOUR_MS),
        by: port.clone(),
        amount: vnd(100_000),
    };
    let err = tickets::refund(&mut doc, &id("pass-1"), &id("e0"), refund).unwrap_err();
    assert!(matches!(err, TicketError::UsedUp { .. }), "{err}");
    let err =
        tickets::transfer(&mut doc, &id("pass-1"), &port, holder(true), at(HOUR_MS)).unwrap_err();
    assert!(matches!(err, TicketError::Used { .. }), "{err}");
}

#[test]
fn a_sale_beyond_the_sellers_quota_is_refused() {
    let operator = node("superdong");
    let mut doc = doc(1);
    tickets::create_sailing(
        &mut doc,
        &sailing("s-1", &operator),
        &[(tickets::SeatClass::Economy, 1)],
    )
    .unwrap();
    let err = tickets::sell(
        &mut doc,
        &ferry_pass("p-1", &node("hall"), "s-1"),
        &node("hall"),
    )
    .unwrap_err();
    assert!(
        matches!(err, TicketError::Escrow(EscrowError::Insufficient { .. })),
        "{err}"
    );
    tickets::sell(&mut doc, &ferry_pass("p-1", &operator, "s-1"), &operator).unwrap();
    let err = tickets::sell(&mut doc, &ferry_pass("p-2", &operator, "s-1"), &operator).unwrap_err();
    assert!(
        matches!(
            err,
            TicketError::Escrow(EscrowError::Insufficient { available: 0, .. })
        ),
        "{err}"
    );
    let err =
        tickets::sell(&mut doc, &ferry_pass("p-3", &operator, "s-none"), &operator).unwrap_err();
    assert!(matches!(err, TicketError::NoSailing { .. }), "{err}");
}

#[test]
fn a_wallet_refuses_payments_beyond_the_allowance() {
    let home = node("hall");
    let mut doc = doc(1);
    wallet::open(
        &mut doc,
        &Wallet {
            id: id("vi-1"),
            card: id("the-1"),
            owner: home.clone(),
            opened_at: at(0),
        },
    )
    .unwrap();
    let pay = |n: &NodeRef| Payment {
        node: n.clone(),
        amount: vnd(10_000),
        purpose: Purpose::Water,
        merchant: id("cap-nuoc"),
        at: at(0),
    };
    let err = wallet::pay(&mut doc, &id("vi-1"), &id("p1"), &pay(&home)).unwrap_err();
    assert!(
        matches!(
            err,
            WalletError::Escrow(EscrowError::Insufficient {
                available: 0,
                amount: 10_000,
                ..
            })
        ),
        "{err}"
    );
    let err = wallet::recall(
        &mut doc,
        &id("vi-1"),
        &id("rc"),
        &node("clinic"),
        &home,
        vnd(1),
        at(0),
    )
    .unwrap_err();
    assert!(matches!(err, WalletError::NotOwner { .. }), "{err}");
    let err = wallet::move_allowance(
        &mut doc,
        &id("vi-1"),
        &id("mv"),
        &home,
        &home,
        vnd(1),
        at(0),
    )
    .unwrap_err();
    assert!(
        matches!(err, WalletError::Escrow(EscrowError::SameNode { .. })),
        "{err}"
    );
    let err = wallet::pay(&mut doc, &id("vi-none"), &id("p1"), &pay(&home)).unwrap_err();
    assert!(
        matches!(err, WalletError::Store(StoreError::NotFound { .. })),
        "{err}"
    );
}

#[test]
fn cards_refuse_attendance_without_enrolment() {
    let hall = node("hall");
    let mut doc = doc(1);
    store::insert(&mut doc, &card("the-1", &hall)).unwrap();
    let class = Attendance {
        id: id("a1"),
        card: id("the-1"),
        session: Session::Class,
        event: id("10a1-toan"),
        at: at(0),
        node: hall.clone(),
    };
    assert!(matches!(
        cards::attend(&mut doc, &class).unwrap_err(),
        CardError::NotStudent { .. }
    ));
    assert!(
        !cards::open_door(
            &mut doc,
            id("d1"),
            &id("the-1"),
            id("door-kho"),
            hall,
            at(0)
        )
        .unwrap()
    );
}

#[test]
fn bookings_refuse_non_owners_and_overlaps() {
    let hotel = node("ks-hai-duong");
    let mut doc = doc(1);
    request(
        &mut doc,
        &booking("bk-1", "101", &hotel, &node("port"), 0, 3),
    );
    request(
        &mut doc,
        &booking("bk-2", "101", &hotel, &node("port"), 2, 2),
    );
    request(
        &mut doc,
        &booking("bk-3", "101", &hotel, &node("port"), 3, 1),
    );
    let err = bookings::confirm(&mut doc, &id("bk-1"), &node("port"), at(0)).unwrap_err();
    assert!(matches!(err, BookingError::NotOwner { .. }), "{err}");
    bookings::confirm(&mut doc, &id("bk-1"), &hotel, at(0)).unwrap();
    let err = bookings::confirm(&mut doc, &id("bk-2"), &hotel, at(0)).unwrap_err();
    assert!(matches!(err, BookingError::Overlap { .. }), "{err}");
    // Leaving on the day another guest arrives is no overlap.
    bookings::confirm(&mut doc, &id("bk-3"), &hotel, at(0)).unwrap();
    let err = bookings::confirm(&mut doc, &id("bk-3"), &hotel, at(0)).unwrap_err();
    assert!(matches!(err, BookingError::NotPending { .. }), "{err}");
    let err = bookings::cancel(&mut doc, &id("bk-1"), &node("stranger"), at(0)).unwrap_err();
    assert!(matches!(err, BookingError::NotParty { .. }), "{err}");
    let mut empty = check_in("ci-1", &node("gate"));
    empty.visitors = 0;
    let err = bookings::check_in(&mut doc, &empty).unwrap_err();
    assert!(
        matches!(
            err,
            BookingError::Input(InputError::Number {
                field: "visitors",
                ..
            })
        ),
        "{err}"
    );
}

#[test]
fn lodging_registrations_belong_to_their_establishment() {
    let hotel = node("ks-hai-duong");
    let mut doc = doc(1);
    store::insert(&mut doc, &establishment(&hotel)).unwrap();
    store::insert(&mut doc, &room("101", 450_000)).unwrap();
    let err = lodging::check_in(
        &mut doc,
        &registration("reg-1", "101", &node("port"), "2025-04-30", 1),
    )
    .unwrap_err();
    assert!(matches!(err, LodgingError::NotOwner { .. }), "{err}");
    lodging::check_in(
        &mut doc,
        &registration("reg-1", "101", &hotel, "2025-04-30", 1),
    )
    .unwrap();
    let err = lodging::check_out(&mut doc, &id("reg-1"), &hotel, at(0)).unwrap_err();
    assert!(matches!(err, LodgingError::BeforeCheckIn { .. }), "{err}");
    lodging::check_out(&mut doc, &id("reg-1"), &hotel, at(DAY_MS)).unwrap();
    let err = lodging::check_out(&mut doc, &id("reg-1"), &hotel, at(DAY_MS)).unwrap_err();
    assert!(matches!(err, LodgingError::CheckedOut { .. }), "{err}");
}

#[test]
fn health_requests_wait_for_their_clinic() {
    let clinic = node("ttyt-phu-quy");
    let mut doc = doc(1);
    let mut long = appointment("hen-1", &clinic, &node("tyt"));
    long.minutes = 0;
    let err = health::request_appointment(&mut doc, &long).unwrap_err();
    assert!(
        matches!(
            err,
            HealthError::Input(InputError::Number {
                field: "minutes",
                ..
            })
        ),
        "{err}"
    );
    health::request_appointment(&mut doc, &appointment("hen-1", &clinic, &node("tyt"))).unwrap();
    let err = health::answer(&mut doc, &id("hen-1"), &node("tyt"), true, at(0)).unwrap_err();
    assert!(matches!(err, HealthError::NotClinic { .. }), "{err}");
    store::insert(&mut doc, &consent("dy-1", &clinic)).unwrap();
    assert!(
        health::consents(
            &doc,
            &id("hs-1"),
            &id("bv-binh-thuan"),
            health::ConsentPurpose::Teleconsultation
        )
        .unwrap()
    );
    health::revoke(&mut doc, &id("dy-1"), at(HOUR_MS)).unwrap();
    assert!(matches!(
        health::revoke(&mut doc, &id("dy-1"), at(HOUR_MS)).unwrap_err(),
        HealthError::Revoked { .. }
    ));
    assert!(
        !health::consents(
            &doc,
            &id("hs-1"),
            &id("bv-binh-thuan"),
            health::ConsentPurpose::Teleconsultation
        )
        .unwrap()
    );
}

#[test]
fn sports_refuse_strangers() {
    let mut doc = doc(1);
    let fixture = Fixture {
        id: id("tran-1"),
        tournament: id("giai-1"),
        home: id("doi-a"),
        away: id("doi-a"),
        kickoff: at(0),
        venue: text("Sân huyện"),
        referees: [id("tt-1")].into(),
    };
    assert!(matches!(
        sports::schedule(&mut doc, &fixture).unwrap_err(),
        SportsError::SameTeam { .. }
    ));
    let fixture = Fixture {
        away: id("doi-b"),
        ..fixture
    };
    sports::schedule(&mut doc, &fixture).unwrap();
    let entry = sports::ResultEntry {
        score: sports::Score { home: 1, away: 0 },
        at: at(0),
        node: node("x"),
    };
    let err = sports::enter_result(&mut doc, &fixture.id, &id("tt-9"), &entry).unwrap_err();
    assert!(matches!(err, SportsError::NotReferee { .. }), "{err}");
}

#[test]
fn announcements_need_targets_a_window_and_words() {
    let station = node("dai-tam-thanh");
    let mut doc = doc(1);
    let mut none = announcement("tb-1", &station, Priority::Normal);
    none.communes.clear();
    assert!(matches!(
        radio::issue(&mut doc, &none).unwrap_err(),
        RadioError::Input(InputError::Number {
            field: "communes",
            ..
        })
    ));
    let mut backwards = announcement("tb-1", &station, Priority::Normal);
    backwards.play_until = backwards.play_from;
    assert!(matches!(
        radio::issue(&mut doc, &backwards).unwrap_err(),
        RadioError::Input(InputError::Range {
            field: "play_until",
            ..
        })
    ));
    let mut digits = announcement("tb-1", &station, Priority::Normal);
    digits.text_vi = text("30/4 10.000");
    assert!(matches!(
        radio::issue(&mut doc, &digits).unwrap_err(),
        RadioError::Input(InputError::Text {
            field: "text_vi",
            ..
        })
    ));

    radio::issue(&mut doc, &announcement("tb-1", &station, Priority::Normal)).unwrap();
    store::insert(&mut doc, &cluster("loa-long-hai", "long-hai", &station)).unwrap();
    let err = radio::report(
        &mut doc,
        &id("tb-1"),
        &id("loa-long-hai"),
        radio::DeliveryState::Played,
        at(0),
    )
    .unwrap_err();
    assert!(matches!(err, RadioError::NotTargeted { .. }), "{err}");
}

#[test]
fn loyalty_redemptions_need_stamps_and_quota() {
    let chain = node("chain");
    let mut doc = doc(1);
    let offer = Offer {
        id: id("uu-dai"),
        chain: id("chuoi"),
        title: text("Tặng nước dừa"),
        businesses: [id("quan-a")].into(),
        stamps_required: 2,
        valid_until: at(DAY_MS),
        owner: chain.clone(),
    };
    loyalty::create(&mut doc, &offer, 1).unwrap();
    let err =
        loyalty::redeem(&mut doc, &offer.id, &id("d1"), &id("the-1"), &chain, at(0)).unwrap_err();
    assert!(
        matches!(
            err,
            LoyaltyError::NotEnoughStamps {
                held: 0,
                needed: 2,
                ..
            }
        ),
        "{err}"
    );
    let stamp = |s: &str, business: &str| loyalty::Stamp {
        id: id(s),
        offer: offer.id.clone(),
        customer: id("the-1"),
        business: id(business),
        node: chain.clone(),
        at: at(0),
    };
    assert!(matches!(
        loyalty::stamp(&mut doc, &stamp("s0", "quan-z")).unwrap_err(),
        LoyaltyError::NotInChain { .. }
    ));
    for s in ["s1", "s2", "s3", "s4"] {
        loyalty::stamp(&mut doc, &stamp(s, "quan-a")).unwrap();
    }
    let err = loyalty::redeem(
        &mut doc,
        &offer.id,
        &id("d1"),
        &id("the-1"),
        &node("quan-a-box"),
        at(0),
    )
    .unwrap_err();
    assert!(
        matches!(err, LoyaltyError::Escrow(EscrowError::Insufficient { .. })),
        "{err}"
    );
    loyalty::redeem(&mut doc, &offer.id, &id("d1"), &id("the-1"), &chain, at(0)).unwrap();
    let err =
        loyalty::redeem(&mut doc, &offer.id, &id("d2"), &id("the-1"), &chain, at(0)).unwrap_err();
    assert!(
        matches!(err, LoyaltyError::Escrow(EscrowError::Insufficient { .. })),
        "cap of 1: {err}"
    );
    let err = loyalty::redeem(
        &mut doc,
        &offer.id,
        &id("d3"),
        &id("the-1"),
        &chain,
        at(DAY_MS),
    )
    .unwrap_err();
    assert!(matches!(err, LoyaltyError::Ended { .. }), "{err}");
}

#[test]
fn records_written_badly_by_a_peer_are_refused_on_read() {
    let mut doc = doc(1);
    store::insert(&mut doc, &card("the-1", &node("hall"))).unwrap();
    let cards = match automerge::ReadDoc::get(&doc, ROOT, "cards").unwrap() {
        Some((_, obj)) => obj,
        None => panic!("cards map"),
    };
    let card_obj = automerge::ReadDoc::get(&doc, &cards, "the-1")
        .unwrap()
        .unwrap()
        .1;
    doc.put(&card_obj, "citizen_id", "12345").unwrap();
    let err = store::get::<crdt_model::records::cards::Card>(&doc, &id("the-1")).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Invalid {
                source: InputError::IdCard { .. },
                ..
            }
        ),
        "{err}"
    );
    doc.put(&card_obj, "issued_at", 5_i64).unwrap();
    doc.put(&card_obj, "citizen_id", "060190001234").unwrap();
    let err = store::get::<crdt_model::records::cards::Card>(&doc, &id("the-1")).unwrap_err();
    assert!(matches!(err, StoreError::WrongType { .. }), "{err}");
}
