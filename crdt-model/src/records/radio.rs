//! Announcements (scope `radio`) for the commune loudspeakers: text in Vietnamese and
//! optionally English, a priority as in Circular 39/2020/TT-BTTTT, target communes, a play
//! window, cancellation and replacement, and the delivery state per loudspeaker cluster.
//!
//! Every state change is monotone, so merges need no arbiter: a cancellation is final, a
//! replaced announcement stays replaced, and a cluster's delivery state is the furthest
//! state any report reached (`queued < failed < playing < played`), each state keyed apart
//! at `ROOT.deliveries.<announcement>.<cluster>.<state>` with the instant it was reached.

use std::collections::{BTreeMap, BTreeSet};

use automerge::{AutoCommit, ROOT};

use super::store::{
    self, Fields, MapReader, MapWriter, Record, Scope, StoreError, child_map, tag_enum,
};
use super::values::{InputError, NodeRef, RecordId, Text, Timestamp};

/// Longest text of one announcement, in characters.
pub const MAX_TEXT_CHARS: usize = 2000;

tag_enum! {
    /// Circular 39/2020 priorities, lowest first.
    pub enum Priority {
        /// Played in the schedule.
        Normal = "normal",
        /// Played ahead of normal items.
        Priority = "priority",
        /// Played at once: disaster, fire, epidemic.
        Emergency = "emergency",
    }
}

tag_enum! {
    /// How far delivery to one cluster got, in the order states can only advance.
    pub enum DeliveryState {
        Queued = "queued",
        Failed = "failed",
        Playing = "playing",
        Played = "played",
    }
}

/// An announcement operation that the records or their rules refuse.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RadioError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Input(#[from] InputError),
    #[error("announcement {announcement} was cancelled")]
    Cancelled { announcement: RecordId },
    #[error("cluster {cluster} is in commune {commune}, not a target of {announcement}")]
    NotTargeted {
        announcement: RecordId,
        cluster: RecordId,
        commune: RecordId,
    },
}

/// A loudspeaker cluster: a receiver with its horns, driven by a commune station.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    pub id: RecordId,
    pub commune: RecordId,
    pub name: Text,
    pub station: NodeRef,
}

impl Record for Cluster {
    const SCOPE: Scope = Scope::Radio;
    const COLLECTION: &'static str = "clusters";

    fn id(&self) -> &RecordId {
        &self.id
    }
}

impl Fields for Cluster {
    fn write(&self, w: &mut MapWriter<'_>) -> Result<(), StoreError> {
        w.put("id", &self.id)?;
        w.put("commune", &self.commune)?;
        w.put("name", &self.name)?;
        w.put("station", &self.station)
    }

    fn read(r: &MapReader<'_>) -> Result<Self, StoreError> {
        Ok(Self {
            id: r.get("id")?,
            commune: r.get("commune")?,
            name: r.get("name")?,
            station: r.get("station")?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cancellation {
    pub at: Timestamp,
    pub by: NodeRef,
    pub reason: Option<Text>,
}

impl Fields for Cancellation {
    fn write(&self, w: &mut MapWriter<'_>) -> Result<(), StoreError> {
        w.put("at", &self.at)?;
        w.put("by", &self.by)?;
        w.put("reason", &self.reason)
    }

    fn read(r: &MapReader<'_>) -> Result<Self, StoreError> {
        Ok(Self {
            at: r.get("at")?,
            by: r.get("by")?,
            reason: r.get("reason")?,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    pub id: RecordId,
    pub text_vi: Text,
    pub text_en: Option<Text>,
    pub priority: Priority,
    pub communes: BTreeSet<RecordId>,
    pub play_from: Timestamp,
    pub play_until: Timestamp,
    pub author: NodeRef,
    pub created_at: Timestamp,
    /// The announcement this one replaces (a CAP Update).
    pub replaces: Option<RecordId>,
    pub cancelled: Option<Cancellation>,
}

impl Announcement {
    /// Checks what a constructor cannot: the window, the targets, the texts' length.
    pub fn validate(&self) -> Result<(), InputError> {
        if self.play_until <= self.play_from {
            let value = format!("{}..{}", self.play_from.millis(), self.play_until.millis());
            let reason = "ms: the play window must end after it starts";
            return Err(InputError::Range {
                field: "play_until",
                value,
                reason,
            });
        }
        if self.communes.is_empty() {
            let reason = "an announcement needs at least one target commune";
            return Err(InputError::Number {
                field: "communes",
                value: 0,
                reason,
            });
        }
        for (field, text) in [
            ("text_vi", Some(&self.text_vi)),
            ("text_en", self.text_en.as_ref()),
        ] {
            let Some(text) = text else { continue };
            if text.as_str().chars().count() > MAX_TEXT_CHARS {
                let value = text.as_str().to_owned();
                return Err(InputError::Text {
                    field,
                    value,
                    reason: "is too long to broadcast",
                });
            }
            if !text.as_str().chars().any(char::is_alphabetic) {
                let value = text.as_str().to_owned();
                return Err(InputError::Text {
                    field,
                    value,
                    reason: "has no words to read",
                });
            }
        }
        if self.replaces.as_ref() == Some(&self.id) {
            let reason = "an announcement cannot replace itself";
            let value = self.id.to_string();
            return Err(InputError::Text {
                field: "replaces",
                value,
                reason,
            });
        }
        Ok(())
    }
}

impl Record for Announcement {
    const SCOPE: Scope = Scope::Radio;
    const COLLECTION: &'static str = "announcements";

    fn id(&self) -> &RecordId {
        &self.id
    }
}

impl Fields for Announcement {
    fn write(&self, w: &mut MapWriter<'_>) -> Result<(), StoreError> {
        w.put("id", &self.id)?;
        w.put("text_vi", &self.text_vi)?;
        w.put("text_en", &self.text_en)?;
        w.put("priority", &self.priority)?;
        w.set("communes", &self.communes)?;
        w.put("play_from", &self.play_from)?;
        w.put("play_until", &self.play_until)?;
        w.put("author", &self.author)?;
        w.put("created_at", &self.created_at)?;
        w.put("replaces", &self.replaces)?;
        w.nested_opt("cancelled", self.cancelled.as_ref())
    }

    fn read(r: &MapReader<'_>) -> Result<Self, StoreError> {
        Ok(Self {
            id: r.get("id")?,
            text_vi: r.get("text_vi")?,
            text_en: r.get("text_en")?,
            priority: r.get("priority")?,
            communes: r.set("communes")?,
            play_from: r.get("play_from")?,
            play_until: r.get("play_until")?,
            author: r.get("author")?,
            created_at: r.get("created_at")?,
            replaces: r.get("replaces")?,
            cancelled: r.nested_opt("cancelled")?,
        })
    }
}

/// Issues an announcement (or a replacement of an earlier one).
pub fn issue(doc: &mut AutoCommit, announcement: &Announcement) -> Result<(), RadioError> {
    announcement.validate()?;
    store::insert(doc, announcement)?;
    Ok(())
}

/// Cancels an announcement; final, and wins over anything written concurrently.
pub fn cancel(
    doc: &mut AutoCommit,
    id: &RecordId,
    cancellation: Cancellation,
) -> Result<(), RadioError> {
    let mut announcement: Announcement = store::fetch(doc, id)?;
    if announcement.cancelled.is_none() {
        announcement.cancelled = Some(cancellation);
        store::put(doc, &announcement)?;
    }
    Ok(())
}

/// A station reports that delivery to a cluster reached `state`. The first report of each
/// state is kept; later ones add nothing.
pub fn report(
    doc: &mut AutoCommit,
    announcement_id: &RecordId,
    cluster_id: &RecordId,
    state: DeliveryState,
    at: Timestamp,
) -> Result<(), RadioError> {
    let announcement: Announcement = store::fetch(doc, announcement_id)?;
    let cluster: Cluster = store::fetch(doc, cluster_id)?;
    if !announcement.communes.contains(&cluster.commune) {
        return Err(RadioError::NotTargeted {
            announcement: announcement_id.clone(),
            cluster: cluster_id.clone(),
            commune: cluster.commune,
        });
    }

    let path = ["deliveries", announcement_id.as_str(), cluster_id.as_str()];
    let reports = MapReader::root(doc, "deliveries").path(&path)?;
    if let Some(reports) = reports
        && reports.scalar(state.tag())?.is_some()
    {
        return Ok(());
    }

    let deliveries = child_map(doc, &ROOT, "deliveries")?;
    let by_announcement = child_map(doc, &deliveries, announcement_id.as_str())?;
    let by_cluster = child_map(doc, &by_announcement, cluster_id.as_str())?;
    MapWriter::new(doc, by_cluster, "deliveries").put(state.tag(), &at)?;
    Ok(())
}

/// The furthest state each cluster reached, with when.
pub fn delivery(
    doc: &AutoCommit,
    announcement: &RecordId,
) -> Result<BTreeMap<RecordId, (DeliveryState, Timestamp)>, RadioError> {
    let root = MapReader::root(doc, "deliveries");
    let Some(map) = root.path(&["deliveries", announcement.as_str()])? else {
        return Ok(BTreeMap::new());
    };

    let mut states = BTreeMap::new();
    for cluster in map.keys() {
        let Some(reports) = map.map(&cluster)? else {
            continue;
        };
        let mut furthest = None;
        for state in DeliveryState::ALL {
            if let Some(at) = reports.get::<Option<Timestamp>>(state.tag())? {
                furthest = Some((*state, at));
            }
        }
        if let Some(furthest) = furthest {
            states.insert(map.id(&cluster)?, furthest);
        }
    }
    Ok(states)
}

/// What the loudspeakers of `commune` should play at `at`: live announcements (in their
/// window, not cancelled, not replaced), emergency first, then priority, then normal, each
/// in order of issue.
pub fn playlist(
    doc: &AutoCommit,
    commune: &RecordId,
    at: Timestamp,
) -> Result<Vec<Announcement>, RadioError> {
    let all: Vec<Announcement> = store::list(doc)?;
    let replaced: BTreeSet<&RecordId> = all.iter().filter_map(|a| a.replaces.as_ref()).collect();

    let mut live: Vec<Announcement> = all
        .iter()
        .filter(|a| a.cancelled.is_none() && !replaced.contains(&a.id))
        .filter(|a| a.communes.contains(commune) && a.play_from <= at && at < a.play_until)
        .cloned()
        .collect();
    live.sort_by(|a, b| (b.priority, a.created_at, &a.id).cmp(&(a.priority, b.created_at, &b.id)));
    Ok(live)
}
