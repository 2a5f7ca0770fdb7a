//! Cards (scope `cards`): the national card of a holder, with its public profile (a business
//! card), the holder's signing key, memberships, student and staff enrolment; class and
//! meeting attendance and door access as append-only events.
//!
//! A card is one map of independent fields: the holder's office may change the phone number
//! while the school changes the class, and both survive the merge. Attendance and door
//! events are records of their own, each written once by the box that saw it.

use std::collections::{BTreeMap, BTreeSet};

use automerge::AutoCommit;
use chrono::NaiveDate;

use super::store::{self, Fields, MapReader, MapWriter, Record, Scope, StoreError, tag_enum};
use super::values::{
    IdCard, InputError, NodeRef, PersonName, Phone, PublicKey, RecordId, Text, Timestamp,
};

tag_enum! {
    /// What an attendance record counts.
    pub enum Session {
        Class = "class",
        Meeting = "meeting",
    }
}

/// A card or access operation that the records or their rules refuse.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CardError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("card {card} has no student enrolment")]
    NotStudent { card: RecordId },
    #[error("card {card} has no staff enrolment")]
    NotStaff { card: RecordId },
}

/// What the holder shows as a business card.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Profile {
    pub title: Option<Text>,
    pub organisation: Option<Text>,
    pub phone: Option<Phone>,
    pub email: Option<Text>,
}

impl Fields for Profile {
    fn write(&self, w: &mut MapWriter<'_>) -> Result<(), StoreError> {
        w.put("title", &self.title)?;
        w.put("organisation", &self.organisation)?;
        w.put("phone", &self.phone)?;
        w.put("email", &self.email)
    }

    fn read(r: &MapReader<'_>) -> Result<Self, StoreError> {
        Ok(Self {
            title: r.get("title")?,
            organisation: r.get("organisation")?,
            phone: r.get("phone")?,
            email: r.get("email")?,
        })
    }
}

/// A club or association the holder belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub organisation: Text,
    pub role: Option<Text>,
    pub since: NaiveDate,
}

impl Fields for Membership {
    fn write(&self, w: &mut MapWriter<'_>) -> Result<(), StoreError> {
        w.put("organisation", &self.organisation)?;
        w.put("role", &self.role)?;
        w.put("since", &self.since)
    }

    fn read(r: &MapReader<'_>) -> Result<Self, StoreError> {
        Ok(Self {
            organisation: r.get("organisation")?,
            role: r.get("role")?,
            since: r.get("since")?,
        })
    }
}

/// A pupil's school and class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StudentEnrolment {
    pub school: RecordId,
    pub class: RecordId,
    pub school_year: u32,
}

impl Fields for StudentEnrolment {
    fn write(&self, w: &mut MapWriter<'_>) -> Result<(), StoreError> {
        w.put("school", &self.school)?;
        w.put("class", &self.class)?;
        w.put("school_year", &self.school_year)
    }

    fn read(r: &MapReader<'_>) -> Result<Self, StoreError> {
        Ok(Self {
            school: r.get("school")?,
            class: r.get("class")?,
            school_year: r.get("school_year")?,
        })
    }
}

/// A civil servant's agency and the doors the card opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffEnrolment {
    pub agency: RecordId,
    pub position: Text,
    pub doors: BTreeSet<RecordId>,
}

impl Fields for StaffEnrolment {
    fn write(&self, w: &mut MapWriter<'_>) -> Result<(), StoreError> {
        w.put("agency", &self.agency)?;
        w.put("position", &self.position)?;
        w.set("doors", &self.doors)
    }

    fn read(r: &MapReader<'_>) -> Result<Self, StoreError> {
        Ok(Self {
            agency: r.get("agency")?,
            position: r.get("position")?,
            doors: r.set("doors")?,
        })
    }
}

/// The national card of one holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Card {
    pub id: RecordId,
    pub citizen_id: IdCard,
    pub name: PersonName,
    pub birth_date: NaiveDate,
    pub commune: RecordId,
    pub issuer: NodeRef,
    pub issued_at: Timestamp,
    pub profile: Profile,
    /// The key the holder signs with (a consent, a contract); checked to be an ed25519 key.
    pub signing_key: Option<PublicKey>,
    pub memberships: BTreeMap<RecordId, Membership>,
    pub student: Option<StudentEnrolment>,
    pub staff: Option<StaffEnrolment>,
}

impl Record for Card {
    const SCOPE: Scope = Scope::Cards;
    const COLLECTION: &'static str = "cards";

    fn id(&self) -> &RecordId {
        &self.id
    }
}

impl Fields for Card {
    fn write(&self, w: &mut MapWriter<'_>) -> Result<(), StoreError> {
        w.put("id", &self.id)?;
        w.put("citizen_id", &self.citizen_id)?;
        w.put("name", &self.name)?;
        w.put("birth_date", &self.birth_date)?;
        w.put("commune", &self.commune)?;
        w.put("issuer", &self.issuer)?;
        w.put("issued_at", &self.issued_at)?;
        w.nested("profile", &self.profile)?;
        w.put("signing_key", &self.signing_key)?;
        w.items("memberships", &self.memberships)?;
        w.nested_opt("student", self.student.as_ref())?;
        w.nested_opt("staff", self.staff.as_ref())
    }

    fn read(r: &MapReader<'_>) -> Result<Self, StoreError> {
        Ok(Self {
            id: r.get("id")?,
            citizen_id: r.get("citizen_id")?,
            name: r.get("name")?,
            birth_date: r.get("birth_date")?,
            commune: r.get("commune")?,
            issuer: r.get("issuer")?,
            issued_at: r.get("issued_at")?,
            profile: r.nested("profile")?,
            signing_key: r.get("signing_key")?,
            memberships: r.items("memberships")?,
            student: r.nested_opt("student")?,
            staff: r.nested_opt("staff")?,
        })
    }
}

/// A holder present at a class session or a meeting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attendance {
    pub id: RecordId,
    pub card: RecordId,
    pub session: Session,
    /// The class session or meeting.
    pub event: RecordId,
    pub at: Timestamp,
    pub node: NodeRef,
}

impl Record for Attendance {
    const SCOPE: Scope = Scope::Cards;
    const COLLECTION: &'static str = "attendance";

    fn id(&self) -> &RecordId {
        &self.id
    }
}

impl Fields for Attendance {
    fn write(&self, w: &mut MapWriter<'_>) -> Result<(), StoreError> {
        w.put("id", &self.id)?;
        w.put("card", &self.card)?;
        w.put("session", &self.session)?;
        w.put("event", &self.event)?;
        w.put("at", &self.at)?;
        w.put("node", &self.node)
    }

    fn read(r: &MapReader<'_>) -> Result<Self, StoreError> {
        Ok(Self {
            id: r.get("id")?,
            card: r.get("card")?,
            session: r.get("session")?,
            event: r.get("event")?,
            at: r.get("at")?,
            node: r.get("node")?,
        })
    }
}

/// A card presented at a door, and whether the door opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoorEvent {
    pub id: RecordId,
    pub card: RecordId,
    pub door: RecordId,
    pub at: Timestamp,
    pub node: NodeRef,
    pub granted: bool,
}

impl Record for DoorEvent {
    const SCOPE: Scope = Scope::Cards;
    const COLLECTION: &'static str = "doors";

    fn id(&self) -> &RecordId {
        &self.id
    }
}

impl Fields for DoorEvent {
    fn write(&self, w: &mut MapWriter<'_>) -> Result<(), StoreError> {
        w.put("id", &self.id)?;
        w.put("card", &self.card)?;
        w.put("door", &self.door)?;
        w.put("at", &self.at)?;
        w.put("node", &self.node)?;
        w.put("granted", &self.granted)
    }

    fn read(r: &MapReader<'_>) -> Result<Self, StoreError> {
        Ok(Self {
            id: r.get("id")?,
            card: r.get("card")?,
            door: r.get("door")?,
            at: r.get("at")?,
            node: r.get("node")?,
            granted: r.get("granted")?,
        })
    }
}

/// Records a holder at a class (which needs a student enrolment) or a meeting (a staff
/// enrolment).
pub fn attend(doc: &mut AutoCommit, attendance: &Attendance) -> Result<(), CardError> {
    let card: Card = store::fetch(doc, &attendance.card)?;
    match attendance.session {
        Session::Class if card.student.is_none() => {
            return Err(CardError::NotStudent { card: card.id });
        }
        Session::Meeting if card.staff.is_none() => {
            return Err(CardError::NotStaff { card: card.id });
        }
        Session::Class | Session::Meeting => {}
    }
    store::insert(doc, attendance)?;
    Ok(())
}

/// Decides whether a door opens for a card, by the doors its staff enrolment lists in this
/// replica's view, and records the event either way. Returns whether it opened.
///
/// A partition can delay a newly granted or withdrawn door; every decision is recorded with
/// the node that took it, so a late one can be audited.
pub fn open_door(
    doc: &mut AutoCommit,
    id: RecordId,
    card_id: &RecordId,
    door: RecordId,
    node: NodeRef,
    at: Timestamp,
) -> Result<bool, CardError> {
    let card: Card = store::fetch(doc, card_id)?;
    let granted = card
        .staff
        .as_ref()
        .is_some_and(|staff| staff.doors.contains(&door));
    let event = DoorEvent {
        id,
        card: card_id.clone(),
        door,
        at,
        node,
        granted,
    };
    store::insert(doc, &event)?;
    Ok(granted)
}
