//! Statistics (scope `stats`): the figures the district reports to the state, derived from
//! the records only: visitor flow through the port per day, lodging registrations, room
//! occupancy, visitor spending and the tax base.
//!
//! [`compute`] is a pure function of the records it is given (deduplicated by id, days cut
//! at the site's offset), so any two replicas holding the same records compute the same
//! figures, and [`record`] writes them as `stats` records that merge without conflicts
//! (every writer of a day writes the same values).
//!
//! Definitions: a port *arrival* is a redeemed port-entry entitlement, a *departure* a
//! redeemed port exit, a *boarding* a redeemed ferry trip; *visitors* are holders who are
//! not residents. A room is *occupied* on a night when a registration covers that night (up
//! to its check-out day when the guest left early). *Lodging revenue* is the nightly rate
//! of each occupied room-night; *visitor spending* is wallet payments for tourism plus the
//! price of passes sold to visitors; the *tax base* is lodging revenue plus tourism
//! payments.

use std::collections::{BTreeMap, BTreeSet};

use automerge::AutoCommit;
use chrono::NaiveDate;

use super::bookings::AttractionCheckIn;
use super::lodging::{Registration, Room};
use super::store::{self, Fields, MapReader, MapWriter, Record, Scope, StoreError};
use super::tickets::{self, EntitlementKind, Pass, TicketError};
use super::values::{RecordId, SiteOffset};
use super::wallet::{self, Purpose, Wallet, WalletError};

/// Records that cannot be read into statistics.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StatsError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Tickets(#[from] TicketError),
    #[error(transparent)]
    Wallet(#[from] WalletError),
}

/// The documents statistics are computed from, by scope. A record held by several
/// documents counts once.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sources<'a> {
    pub tickets: &'a [&'a AutoCommit],
    pub cards: &'a [&'a AutoCommit],
    pub lodging: &'a [&'a AutoCommit],
    pub bookings: &'a [&'a AutoCommit],
}

/// The figures of one local day.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DayFigures {
    pub date: Option<NaiveDate>,
    pub port_arrivals: u64,
    pub visitor_arrivals: u64,
    pub port_departures: u64,
    pub ferry_boardings: u64,
    pub attraction_visits: u64,
    pub lodging_registrations: u64,
    pub rooms_occupied: u64,
    pub rooms_total: u64,
    pub lodging_revenue_vnd: u64,
    pub tourism_payments_vnd: u64,
    pub visitor_spending_vnd: u64,
    pub tax_base_vnd: u64,
}

impl DayFigures {
    /// Occupied rooms per ten thousand rooms (basis points), 0 without rooms.
    pub fn occupancy_bp(&self) -> u64 {
        match self.rooms_total {
            0 => 0,
            total => self.rooms_occupied * 10_000 / total,
        }
    }
}

/// The record of one day's figures in a `stats` document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayRecord {
    pub id: RecordId,
    pub figures: DayFigures,
}

impl Record for DayRecord {
    const SCOPE: Scope = Scope::Stats;
    const COLLECTION: &'static str = "days";

    fn id(&self) -> &RecordId {
        &self.id
    }
}

impl Fields for DayRecord {
    fn write(&self, w: &mut MapWriter<'_>) -> Result<(), StoreError> {
        let f = &self.figures;
        w.put("id", &self.id)?;
        w.put("date", &f.date)?;
        for (key, value) in [
            ("port_arrivals", f.port_arrivals),
            ("visitor_arrivals", f.visitor_arrivals),
            ("port_departures", f.port_departures),
            ("ferry_boardings", f.ferry_boardings),
            ("attraction_visits", f.attraction_visits),
            ("lodging_registrations", f.lodging_registrations),
            ("rooms_occupied", f.rooms_occupied),
            ("rooms_total", f.rooms_total),
            ("lodging_revenue_vnd", f.lodging_revenue_vnd),
            ("tourism_payments_vnd", f.tourism_payments_vnd),
            ("visitor_spending_vnd", f.visitor_spending_vnd),
            ("tax_base_vnd", f.tax_base_vnd),
        ] {
            w.put(key, &value)?;
        }
        Ok(())
    }

    fn read(r: &MapReader<'_>) -> Result<Self, StoreError> {
        let figures = DayFigures {
            date: r.get("date")?,
            port_arrivals: r.get("port_arrivals")?,
            visitor_arrivals: r.get("visitor_arrivals")?,
            port_departures: r.get("port_departures")?,
            ferry_boardings: r.get("ferry_boardings")?,
            attraction_visits: r.get("attraction_visits")?,
            lodging_registrations: r.get("lodging_registrations")?,
            rooms_occupied: r.get("rooms_occupied")?,
            rooms_total: r.get("rooms_total")?,
            lodging_revenue_vnd: r.get("lodging_revenue_vnd")?,
            tourism_payments_vnd: r.get("tourism_payments_vnd")?,
            visitor_spending_vnd: r.get("visitor_spending_vnd")?,
            tax_base_vnd: r.get("tax_base_vnd")?,
        };
        Ok(Self {
            id: r.get("id")?,
            figures,
        })
    }
}

/// The district's figures, by local day.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Statistics {
    pub days: BTreeMap<NaiveDate, DayFigures>,
}

impl Statistics {
    fn day(&mut self, date: NaiveDate) -> &mut DayFigures {
        self.days.entry(date).or_insert_with(|| DayFigures {
            date: Some(date),
            ..DayFigures::default()
        })
    }
}

fn union<R: Record>(docs: &[&AutoCommit]) -> Result<BTreeMap<RecordId, R>, StoreError> {
    let mut all = BTreeMap::new();
    for doc in docs {
        for record in store::list::<R>(doc)? {
            all.entry(record.id().clone()).or_insert(record);
        }
    }
    Ok(all)
}

/// Computes every day's figures from the records in `sources`.
pub fn compute(sources: Sources<'_>, offset: SiteOffset) -> Result<Statistics, StatsError> {
    let mut stats = Statistics::default();
    count_port(&mut stats, sources.tickets, offset)?;
    count_lodging(&mut stats, sources.lodging, offset)?;
    count_payments(&mut stats, sources.cards, offset)?;

    let check_ins: BTreeMap<RecordId, AttractionCheckIn> = union(sources.bookings)?;
    for check_in in check_ins.values() {
        stats.day(check_in.at.local_date(offset)).attraction_visits += u64::from(check_in.visitors);
    }

    let rooms_total = union::<Room>(sources.lodging)?.len() as u64;
    for day in stats.days.values_mut() {
        day.rooms_total = rooms_total;
        day.tax_base_vnd = day.lodging_revenue_vnd + day.tourism_payments_vnd;
        day.visitor_spending_vnd += day.tourism_payments_vnd;
    }
    Ok(stats)
}

fn count_port(
    stats: &mut Statistics,
    docs: &[&AutoCommit],
    offset: SiteOffset,
) -> Result<(), StatsError> {
    let passes: BTreeMap<RecordId, Pass> = union(docs)?;
    for pass in passes.values() {
        if !pass.holder.resident {
            stats
                .day(pass.sold_at.local_date(offset))
                .visitor_spending_vnd += pass.price.get();
        }

        for (id, entitlement) in &pass.entitlements {
            let mut uses = BTreeMap::new();
            for doc in docs {
                uses.extend(tickets::uses(doc, &pass.id, id)?);
            }
            for redemption in uses.values() {
                let day = stats.day(redemption.at.local_date(offset));
                match entitlement.kind {
                    EntitlementKind::PortEntry => {
                        day.port_arrivals += 1;
                        day.visitor_arrivals += u64::from(!pass.holder.resident);
                    }
                    EntitlementKind::PortExit => day.port_departures += 1,
                    EntitlementKind::FerryTrip { .. } => day.ferry_boardings += 1,
                    EntitlementKind::AttractionEntry { .. } => {}
                }
            }
        }
    }
    Ok(())
}

fn count_lodging(
    stats: &mut Statistics,
    docs: &[&AutoCommit],
    offset: SiteOffset,
) -> Result<(), StatsError> {
    let rooms: BTreeMap<RecordId, Room> = union(docs)?;
    let registrations: BTreeMap<RecordId, Registration> = union(docs)?;

    let mut occupied: BTreeMap<NaiveDate, BTreeSet<&RecordId>> = BTreeMap::new();
    for registration in registrations.values() {
        stats
            .day(registration.checked_in_at.local_date(offset))
            .lodging_registrations += 1;

        let left = registration.checked_out_at.map(|at| at.local_date(offset));
        let last = left.map_or(registration.stay.end(), |left| {
            left.min(registration.stay.end())
        });
        let mut night = registration.stay.start();
        while night < last {
            occupied
                .entry(night)
                .or_default()
                .insert(&registration.room);
            night = night.succ_opt().unwrap_or(last);
        }
    }

    for (night, rooms_used) in occupied {
        let revenue: u64 = rooms_used
            .iter()
            .filter_map(|room| rooms.get(*room))
            .map(|room| room.nightly_rate.get())
            .sum();
        let day = stats.day(night);
        day.rooms_occupied = rooms_used.len() as u64;
        day.lodging_revenue_vnd = revenue;
    }
    Ok(())
}

fn count_payments(
    stats: &mut Statistics,
    docs: &[&AutoCommit],
    offset: SiteOffset,
) -> Result<(), StatsError> {
    let wallets: BTreeMap<RecordId, Wallet> = union(docs)?;
    for wallet_id in wallets.keys() {
        let mut payments = BTreeMap::new();
        for doc in docs {
            if store::get::<Wallet>(doc, wallet_id)?.is_some() {
                payments.extend(wallet::payments(doc, wallet_id)?);
            }
        }
        for payment in payments.values().filter(|p| p.purpose == Purpose::Tourism) {
            stats
                .day(payment.at.local_date(offset))
                .tourism_payments_vnd += payment.amount.get();
        }
    }
    Ok(())
}

/// Writes every day's figures into a `stats` document.
pub fn record(doc: &mut AutoCommit, stats: &Statistics) -> Result<(), StatsError> {
    for (date, figures) in &stats.days {
        let id =
            RecordId::new("day", &format!("d-{date}")).map_err(|source| StoreError::Invalid {
                record: DayRecord::COLLECTION,
                source,
            })?;
        store::put(
            doc,
            &DayRecord {
                id,
                figures: figures.clone(),
            },
        )?;
    }
    Ok(())
}

/// Reads back the figures a `stats` document holds.
pub fn recorded(doc: &AutoCommit) -> Result<Statistics, StatsError> {
    let days = store::list::<DayRecord>(doc)?;
    let days = days
        .into_iter()
        .filter_map(|d| Some((d.figures.date?, d.figures)))
        .collect();
    Ok(Statistics { days })
}
