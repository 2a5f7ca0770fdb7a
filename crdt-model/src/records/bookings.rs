//! Bookings (scope `bookings`): vehicles for rent, bookings of rooms and vehicles for date
//! ranges, and check-ins at attractions.
//!
//! A room or vehicle belongs to one node, its owner (the establishment's or rental shop's
//! box). Anyone may request a booking; only the owner confirms or refuses it, and it
//! confirms only when no confirmed booking of the same resource overlaps in its own view.
//! Since the owner's view always holds its own confirmations, and a cancellation only frees
//! nights, two overlapping bookings are never both confirmed, after any merge. A request
//! made elsewhere stays pending until the owner's answer arrives. Decisions written by any
//! other node than the owner are ignored.

use automerge::AutoCommit;

use super::store::{self, Fields, MapReader, MapWriter, Record, Scope, StoreError, tag_enum};
use super::values::{
    DateRange, InputError, NodeRef, PersonName, Phone, RecordId, Text, Timestamp, Vnd,
};

tag_enum! {
    pub enum VehicleKind {
        Motorbike = "motorbike",
        Bicycle = "bicycle",
        Car = "car",
        Boat = "boat",
    }
}

tag_enum! {
    /// What a booking reserves.
    pub enum ResourceKind {
        Room = "room",
        Vehicle = "vehicle",
    }
}

/// A booking operation that the records or their rules refuse.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BookingError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("only {owner}, owner of the resource, may decide booking {booking}; {node} asked")]
    NotOwner {
        booking: RecordId,
        node: NodeRef,
        owner: NodeRef,
    },
    #[error("booking {booking} overlaps confirmed booking {other}")]
    Overlap { booking: RecordId, other: RecordId },
    #[error("booking {booking} is {status:?}, not pending")]
    NotPending {
        booking: RecordId,
        status: BookingStatus,
    },
    #[error("only the requester or the owner may cancel booking {booking}; {node} asked")]
    NotParty { booking: RecordId, node: NodeRef },
}

/// A vehicle for rent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vehicle {
    pub id: RecordId,
    pub kind: VehicleKind,
    pub plate: Text,
    pub daily_rate: Vnd,
    pub commune: RecordId,
    pub owner: NodeRef,
}

impl Record for Vehicle {
    const SCOPE: Scope = Scope::Bookings;
    const COLLECTION: &'static str = "vehicles";

    fn id(&self) -> &RecordId {
        &self.id
    }
}

impl Fields for Vehicle {
    fn write(&self, w: &mut MapWriter<'_>) -> Result<(), StoreError> {
        w.put("id", &self.id)?;
        w.put("kind", &self.kind)?;
        w.put("plate", &self.plate)?;
        w.put("daily_rate", &self.daily_rate)?;
        w.put("commune", &self.commune)?;
        w.put("owner", &self.owner)
    }

    fn read(r: &MapReader<'_>) -> Result<Self, StoreError> {
        Ok(Self {
            id: r.get("id")?,
            kind: r.get("kind")?,
            plate: r.get("plate")?,
            daily_rate: r.get("daily_rate")?,
            commune: r.get("commune")?,
            owner: r.get("owner")?,
        })
    }
}

/// The owner's answer to a booking request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub confirmed: bool,
    pub by: NodeRef,
    pub at: Timestamp,
    pub reason: Option<Text>,
}

impl Fields for Answer {
    fn write(&self, w: &mut MapWriter<'_>) -> Result<(), StoreError> {
        w.put("confirmed", &self.confirmed)?;
        w.put("by", &self.by)?;
        w.put("at", &self.at)?;
        w.put("reason", &self.reason)
    }

    fn read(r: &MapReader<'_>) -> Result<Self, StoreError> {
        Ok(Self {
            confirmed: r.get("confirmed")?,
            by: r.get("by")?,
            at: r.get("at")?,
            reason: r.get("reason")?,
        })
    }
}

/// Where a booking stands, derived from its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookingStatus {
    Pending,
    Confirmed,
    Refused,
    Cancelled,
}

/// A request for a room or a vehicle over a date range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Booking {
    pub id: RecordId,
    pub resource_kind: ResourceKind,
    pub resource: RecordId,
    /// The resource's owner, copied from its record when the request is made: the only node
    /// whose answer counts.
    pub owner: NodeRef,
    pub guest: PersonName,
    pub phone: Option<Phone>,
    pub stay: DateRange,
    pub price: Vnd,
    pub requested_by: NodeRef,
    pub requested_at: Timestamp,
    pub answer: Option<Answer>,
    pub cancelled_at: Option<Timestamp>,
}

impl Booking {
    pub fn status(&self) -> BookingStatus {
        let answer = self
            .answer
            .as_ref()
            .filter(|answer| answer.by == self.owner);
        match (self.cancelled_at, answer) {
            (Some(_), _) => BookingStatus::Cancelled,
            (None, None) => BookingStatus::Pending,
            (None, Some(answer)) if answer.confirmed => BookingStatus::Confirmed,
            (None, Some(_)) => BookingStatus::Refused,
        }
    }

    fn same_resource(&self, other: &Booking) -> bool {
        self.resource_kind == other.resource_kind && self.resource == other.resource
    }
}

impl Record for Booking {
    const SCOPE: Scope = Scope::Bookings;
    const COLLECTION: &'static str = "bookings";

    fn id(&self) -> &RecordId {
        &self.id
    }
}

impl Fields for Booking {
    fn write(&self, w: &mut MapWriter<'_>) -> Result<(), StoreError> {
        w.put("id", &self.id)?;
        w.put("resource_kind", &self.resource_kind)?;
        w.put("resource", &self.resource)?;
        w.put("owner", &self.owner)?;
        w.put("guest", &self.guest)?;
        w.put("phone", &self.phone)?;
        w.put("from", &self.stay.start())?;
        w.put("to", &self.stay.end())?;
        w.put("price", &self.price)?;
        w.put("requested_by", &self.requested_by)?;
        w.put("requested_at", &self.requested_at)?;
        w.nested_opt("answer", self.answer.as_ref())?;
        w.put("cancelled_at", &self.cancelled_at)
    }

    fn read(r: &MapReader<'_>) -> Result<Self, StoreError> {
        let stay =
            DateRange::new("stay", r.get("from")?, r.get("to")?).map_err(|e| r.invalid(e))?;
        Ok(Self {
            id: r.get("id")?,
            resource_kind: r.get("resource_kind")?,
            resource: r.get("resource")?,
            owner: r.get("owner")?,
            guest: r.get("guest")?,
            phone: r.get("phone")?,
            stay,
            price: r.get("price")?,
            requested_by: r.get("requested_by")?,
            requested_at: r.get("requested_at")?,
            answer: r.nested_opt("answer")?,
            cancelled_at: r.get("cancelled_at")?,
        })
    }
}

/// Records a request; it is pending until the owner answers, wherever it was made.
pub fn request(doc: &mut AutoCommit, booking: &Booking) -> Result<(), BookingError> {
    if booking.answer.is_some() || booking.cancelled_at.is_some() {
        let status = booking.status();
        return Err(BookingError::NotPending {
            booking: booking.id.clone(),
            status,
        });
    }
    store::insert(doc, booking)?;
    Ok(())
}

fn pending_for_owner(
    doc: &AutoCommit,
    booking_id: &RecordId,
    by: &NodeRef,
) -> Result<Booking, BookingError> {
    let booking: Booking = store::fetch(doc, booking_id)?;
    if &booking.owner != by {
        let (node, owner) = (by.clone(), booking.owner.clone());
        return Err(BookingError::NotOwner {
            booking: booking_id.clone(),
            node,
            owner,
        });
    }
    match booking.status() {
        BookingStatus::Pending => Ok(booking),
        status => Err(BookingError::NotPending {
            booking: booking_id.clone(),
            status,
        }),
    }
}

/// The confirmed booking of the same resource that shares a night with `booking`, if any.
fn clash<'a>(all: &'a [Booking], booking: &Booking) -> Option<&'a Booking> {
    all.iter().find(|other| {
        other.id != booking.id
            && other.same_resource(booking)
            && other.status() == BookingStatus::Confirmed
            && other.stay.overlaps(&booking.stay)
    })
}

/// The owner confirms a pending booking, unless a confirmed booking of the same resource
/// shares a night with it.
pub fn confirm(
    doc: &mut AutoCommit,
    booking_id: &RecordId,
    by: &NodeRef,
    at: Timestamp,
) -> Result<(), BookingError> {
    let mut booking = pending_for_owner(doc, booking_id, by)?;
    let all: Vec<Booking> = store::list(doc)?;
    if let Some(other) = clash(&all, &booking) {
        let other = other.id.clone();
        return Err(BookingError::Overlap {
            booking: booking.id,
            other,
        });
    }

    booking.answer = Some(Answer {
        confirmed: true,
        by: by.clone(),
        at,
        reason: None,
    });
    store::put(doc, &booking)?;
    Ok(())
}

/// The owner refuses a pending booking.
pub fn refuse(
    doc: &mut AutoCommit,
    booking_id: &RecordId,
    by: &NodeRef,
    at: Timestamp,
    reason: Option<Text>,
) -> Result<(), BookingError> {
    let mut booking = pending_for_owner(doc, booking_id, by)?;
    booking.answer = Some(Answer {
        confirmed: false,
        by: by.clone(),
        at,
        reason,
    });
    store::put(doc, &booking)?;
    Ok(())
}

/// The requester or the owner cancels a booking; it frees its nights for good.
pub fn cancel(
    doc: &mut AutoCommit,
    booking_id: &RecordId,
    by: &NodeRef,
    at: Timestamp,
) -> Result<(), BookingError> {
    let mut booking: Booking = store::fetch(doc, booking_id)?;
    if by != &booking.owner && by != &booking.requested_by {
        return Err(BookingError::NotParty {
            booking: booking_id.clone(),
            node: by.clone(),
        });
    }
    if booking.cancelled_at.is_none() {
        booking.cancelled_at = Some(at);
        store::put(doc, &booking)?;
    }
    Ok(())
}

/// The owner answers every pending request it owns, oldest first (ties by id): confirmed
/// when free, refused when it overlaps. Returns the answers given.
pub fn answer_pending(
    doc: &mut AutoCommit,
    owner: &NodeRef,
    at: Timestamp,
) -> Result<Vec<(RecordId, BookingStatus)>, BookingError> {
    let mut all: Vec<Booking> = store::list(doc)?;
    let mut pending: Vec<usize> = (0..all.len())
        .filter(|&i| &all[i].owner == owner && all[i].status() == BookingStatus::Pending)
        .collect();
    pending.sort_by(|&a, &b| {
        (all[a].requested_at, &all[a].id).cmp(&(all[b].requested_at, &all[b].id))
    });

    // One read of the bookings, kept up to date in memory as answers are given.
    let mut answers = Vec::with_capacity(pending.len());
    for i in pending {
        let answer = match clash(&all, &all[i]) {
            None => Answer {
                confirmed: true,
                by: owner.clone(),
                at,
                reason: None,
            },
            Some(other) => {
                let reason = Text::new("reason", &format!("overlaps booking {}", other.id))?;
                Answer {
                    confirmed: false,
                    by: owner.clone(),
                    at,
                    reason: Some(reason),
                }
            }
        };
        all[i].answer = Some(answer);
        store::put(doc, &all[i])?;
        answers.push((all[i].id.clone(), all[i].status()));
    }
    Ok(answers)
}

/// A party's visit to an attraction, recorded at its gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttractionCheckIn {
    pub id: RecordId,
    pub attraction: RecordId,
    pub pass: Option<RecordId>,
    pub visitors: u32,
    pub at: Timestamp,
    pub node: NodeRef,
}

impl Record for AttractionCheckIn {
    const SCOPE: Scope = Scope::Bookings;
    const COLLECTION: &'static str = "checkins";

    fn id(&self) -> &RecordId {
        &self.id
    }
}

impl Fields for AttractionCheckIn {
    fn write(&self, w: &mut MapWriter<'_>) -> Result<(), StoreError> {
        w.put("id", &self.id)?;
        w.put("attraction", &self.attraction)?;
        w.put("pass", &self.pass)?;
        w.put("visitors", &self.visitors)?;
        w.put("at", &self.at)?;
        w.put("node", &self.node)
    }

    fn read(r: &MapReader<'_>) -> Result<Self, StoreError> {
        Ok(Self {
            id: r.get("id")?,
            attraction: r.get("attraction")?,
            pass: r.get("pass")?,
            visitors: r.get("visitors")?,
            at: r.get("at")?,
            node: r.get("node")?,
        })
    }
}

/// Records a check-in at an attraction; a party has at least one visitor.
pub fn check_in(doc: &mut AutoCommit, check_in: &AttractionCheckIn) -> Result<(), BookingError> {
    if check_in.visitors == 0 {
        let reason = "a check-in needs at least one visitor";
        return Err(InputError::Number {
            field: "visitors",
            value: 0,
            reason,
        }
        .into());
    }
    store::insert(doc, check_in)?;
    Ok(())
}
