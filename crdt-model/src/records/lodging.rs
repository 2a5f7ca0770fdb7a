//! Lodging (scope `lodging`): establishments, their rooms, and the lodging registration the
//! state requires at check-in (guest, id document, nights) closed at check-out.
//!
//! An establishment's box owns its rooms and its registrations: only it checks guests in and
//! out, so these records have a single writer and merge without conflicts. Bookings of
//! rooms live in scope `bookings` ([`super::bookings`]).

use automerge::AutoCommit;

use super::store::{self, Fields, MapReader, MapWriter, Record, Scope, StoreError, tag_enum};
use super::values::{
    DateRange, IdDocument, InputError, NodeRef, PersonName, Phone, RecordId, Text, Timestamp, Vnd,
};

tag_enum! {
    pub enum EstablishmentKind {
        Hotel = "hotel",
        Guesthouse = "guesthouse",
        Homestay = "homestay",
        Resort = "resort",
    }
}

/// A lodging operation that the records or their rules refuse.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LodgingError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("only {owner}, the establishment's box, may do this; {node} asked")]
    NotOwner { node: NodeRef, owner: NodeRef },
    #[error("room {room} does not belong to establishment {establishment}")]
    WrongRoom {
        room: RecordId,
        establishment: RecordId,
    },
    #[error("registration {registration} was already checked out")]
    CheckedOut { registration: RecordId },
    #[error("check-out at {at:?} is before check-in at {checked_in:?}")]
    BeforeCheckIn {
        at: Timestamp,
        checked_in: Timestamp,
    },
}

/// A hotel, guesthouse, homestay or resort.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Establishment {
    pub id: RecordId,
    pub name: Text,
    pub kind: EstablishmentKind,
    pub commune: RecordId,
    pub address: Text,
    pub phone: Option<Phone>,
    pub licence: Option<RecordId>,
    /// The establishment's box: owns its rooms, confirms their bookings, registers guests.
    pub owner: NodeRef,
}

impl Record for Establishment {
    const SCOPE: Scope = Scope::Lodging;
    const COLLECTION: &'static str = "establishments";

    fn id(&self) -> &RecordId {
        &self.id
    }
}

impl Fields for Establishment {
    fn write(&self, w: &mut MapWriter<'_>) -> Result<(), StoreError> {
        w.put("id", &self.id)?;
        w.put("name", &self.name)?;
        w.put("kind", &self.kind)?;
        w.put("commune", &self.commune)?;
        w.put("address", &self.address)?;
        w.put("phone", &self.phone)?;
        w.put("licence", &self.licence)?;
        w.put("owner", &self.owner)
    }

    fn read(r: &MapReader<'_>) -> Result<Self, StoreError> {
        Ok(Self {
            id: r.get("id")?,
            name: r.get("name")?,
            kind: r.get("kind")?,
            commune: r.get("commune")?,
            address: r.get("address")?,
            phone: r.get("phone")?,
            licence: r.get("licence")?,
            owner: r.get("owner")?,
        })
    }
}

/// A room of an establishment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Room {
    pub id: RecordId,
    pub establishment: RecordId,
    pub number: Text,
    pub beds: u32,
    pub nightly_rate: Vnd,
}

impl Record for Room {
    const SCOPE: Scope = Scope::Lodging;
    const COLLECTION: &'static str = "rooms";

    fn id(&self) -> &RecordId {
        &self.id
    }
}

impl Fields for Room {
    fn write(&self, w: &mut MapWriter<'_>) -> Result<(), StoreError> {
        w.put("id", &self.id)?;
        w.put("establishment", &self.establishment)?;
        w.put("number", &self.number)?;
        w.put("beds", &self.beds)?;
        w.put("nightly_rate", &self.nightly_rate)
    }

    fn read(r: &MapReader<'_>) -> Result<Self, StoreError> {
        Ok(Self {
            id: r.get("id")?,
            establishment: r.get("establishment")?,
            number: r.get("number")?,
            beds: r.get("beds")?,
            nightly_rate: r.get("nightly_rate")?,
        })
    }
}

/// A guest's lodging registration (khai báo lưu trú): who stays, on which document, which
/// nights, in which room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub id: RecordId,
    pub establishment: RecordId,
    pub room: RecordId,
    pub guest: PersonName,
    pub document: IdDocument,
    pub stay: DateRange,
    pub checked_in_at: Timestamp,
    pub checked_out_at: Option<Timestamp>,
    pub node: NodeRef,
}

impl Record for Registration {
    const SCOPE: Scope = Scope::Lodging;
    const COLLECTION: &'static str = "registrations";

    fn id(&self) -> &RecordId {
        &self.id
    }
}

impl Fields for Registration {
    fn write(&self, w: &mut MapWriter<'_>) -> Result<(), StoreError> {
        w.put("id", &self.id)?;
        w.put("establishment", &self.establishment)?;
        w.put("room", &self.room)?;
        w.put("guest", &self.guest)?;
        w.put("document", &self.document)?;
        w.put("from", &self.stay.start())?;
        w.put("to", &self.stay.end())?;
        w.put("checked_in_at", &self.checked_in_at)?;
        w.put("checked_out_at", &self.checked_out_at)?;
        w.put("node", &self.node)
    }

    fn read(r: &MapReader<'_>) -> Result<Self, StoreError> {
        let stay =
            DateRange::new("stay", r.get("from")?, r.get("to")?).map_err(|e| r.invalid(e))?;
        Ok(Self {
            id: r.get("id")?,
            establishment: r.get("establishment")?,
            room: r.get("room")?,
            guest: r.get("guest")?,
            document: r.get("document")?,
            stay,
            checked_in_at: r.get("checked_in_at")?,
            checked_out_at: r.get("checked_out_at")?,
            node: r.get("node")?,
        })
    }
}

/// Checks a guest in: the registration is recorded by the establishment's own box, for a
/// room of that establishment.
pub fn check_in(doc: &mut AutoCommit, registration: &Registration) -> Result<(), LodgingError> {
    let establishment: Establishment = store::fetch(doc, &registration.establishment)?;
    if establishment.owner != registration.node {
        let (node, owner) = (registration.node.clone(), establishment.owner);
        return Err(LodgingError::NotOwner { node, owner });
    }
    let room: Room = store::fetch(doc, &registration.room)?;
    if room.establishment != establishment.id {
        let (room, establishment) = (room.id, establishment.id);
        return Err(LodgingError::WrongRoom {
            room,
            establishment,
        });
    }
    if registration.checked_out_at.is_some() {
        let registration = registration.id.clone();
        return Err(LodgingError::CheckedOut { registration });
    }

    store::insert(doc, registration)?;
    Ok(())
}

/// Checks a guest out, by the establishment's box.
pub fn check_out(
    doc: &mut AutoCommit,
    registration_id: &RecordId,
    node: &NodeRef,
    at: Timestamp,
) -> Result<(), LodgingError> {
    let mut registration: Registration = store::fetch(doc, registration_id)?;
    if &registration.node != node {
        let owner = registration.node.clone();
        return Err(LodgingError::NotOwner {
            node: node.clone(),
            owner,
        });
    }
    if registration.checked_out_at.is_some() {
        return Err(LodgingError::CheckedOut {
            registration: registration.id,
        });
    }
    if at < registration.checked_in_at {
        let checked_in = registration.checked_in_at;
        return Err(LodgingError::BeforeCheckIn { at, checked_in });
    }

    registration.checked_out_at = Some(at);
    store::put(doc, &registration)?;
    Ok(())
}
