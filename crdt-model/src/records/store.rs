//! How typed records sit in an automerge document, and the reconciliation that writes them.
//!
//! A document holds records of one [`Scope`]: `ROOT.scope` names it, and each record type
//! keeps its records in the map `ROOT.<COLLECTION>.<id>`, one automerge map per record with
//! one key per field. Nested items (an entitlement in a pass, an allergy in a patient summary)
//! are maps keyed by their id, sets are maps of `id → true`.
//!
//! Writing a record compares every field with what the document holds and puts only the
//! fields that differ. That is what lets two replicas edit different fields of one record
//! concurrently and keep both edits: a write never touches a field its caller did not change.

use std::cell::{Cell, OnceCell};
use std::collections::{BTreeMap, BTreeSet};

use automerge::iter::MapRangeItem;
use automerge::transaction::Transactable;
use automerge::{AutoCommit, AutomergeError, ObjId, ObjType, ROOT, ReadDoc, ScalarValue, Value};
use chrono::NaiveDate;

use super::values::{
    IdCard, IdDocument, InputError, NodeRef, PersonName, Phone, PublicKey, RecordId, Text,
    Timestamp, Vnd, parse_date,
};

/// The access-control unit a record belongs to (DESIGN.md, "Replication").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    Tickets,
    Cards,
    Bookings,
    Lodging,
    Health,
    Sports,
    Radio,
    Stats,
}

impl Scope {
    pub const ALL: [Scope; 8] = [
        Scope::Tickets,
        Scope::Cards,
        Scope::Bookings,
        Scope::Lodging,
        Scope::Health,
        Scope::Sports,
        Scope::Radio,
        Scope::Stats,
    ];

    /// The scope's name as the replica core and node certificates spell it.
    pub const fn name(self) -> &'static str {
        match self {
            Scope::Tickets => "tickets",
            Scope::Cards => "cards",
            Scope::Bookings => "bookings",
            Scope::Lodging => "lodging",
            Scope::Health => "health",
            Scope::Sports => "sports",
            Scope::Radio => "radio",
            Scope::Stats => "stats",
        }
    }
}

/// A document that cannot be read as, or written with, the records asked for.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("automerge: {0}")]
    Automerge(Box<AutomergeError>),
    #[error("{record}.{field}: missing")]
    Missing { record: &'static str, field: String },
    #[error("{record}.{field}: expected {expected}, found {found}")]
    WrongType {
        record: &'static str,
        field: String,
        expected: &'static str,
        found: String,
    },
    #[error("{record}: stored value is invalid: {source}")]
    Invalid {
        record: &'static str,
        source: InputError,
    },
    #[error("document holds scope {found:?}, not {expected:?} needed by {record}")]
    ScopeMismatch {
        record: &'static str,
        expected: &'static str,
        found: String,
    },
    #[error("{record} {id} already exists")]
    Exists { record: &'static str, id: String },
    #[error("{record} {id} not found")]
    NotFound { record: &'static str, id: String },
}

impl From<AutomergeError> for StoreError {
    fn from(err: AutomergeError) -> Self {
        Self::Automerge(Box::new(err))
    }
}

/// A struct stored as one automerge map, one key per field.
pub trait Fields: Sized {
    /// Puts every field that differs from what the map holds.
    fn write(&self, w: &mut MapWriter<'_>) -> Result<(), StoreError>;
    fn read(r: &MapReader<'_>) -> Result<Self, StoreError>;
}

/// A top-level record: [`Fields`] with an id, a scope and the collection holding it.
pub trait Record: Fields {
    const SCOPE: Scope;
    /// The scope's name, as a constant of the record type.
    const SCOPE_NAME: &'static str = Self::SCOPE.name();
    /// The key under the document root of the map that holds records of this type.
    const COLLECTION: &'static str;

    fn id(&self) -> &RecordId;
}

/// A value that fits one key of a map.
pub trait Field: Sized {
    fn put(&self, w: &mut MapWriter<'_>, key: &str) -> Result<(), StoreError>;
    fn get(r: &MapReader<'_>, key: &str) -> Result<Self, StoreError>;
}

/// Writes the fields of one map, touching only keys whose value changes.
#[derive(Debug)]
pub struct MapWriter<'a> {
    doc: &'a mut AutoCommit,
    obj: ObjId,
    record: &'static str,
}

impl<'a> MapWriter<'a> {
    pub fn new(doc: &'a mut AutoCommit, obj: ObjId, record: &'static str) -> Self {
        Self { doc, obj, record }
    }

    pub fn put<F: Field>(&mut self, key: &str, value: &F) -> Result<(), StoreError> {
        value.put(self, key)
    }

    /// Puts a scalar unless the winning value already equals it, so an unchanged field adds
    /// no operation (and cannot override a concurrent edit of that field).
    pub fn scalar(&mut self, key: &str, value: ScalarValue) -> Result<(), StoreError> {
        if let Some((Value::Scalar(current), _)) = self.doc.get(&self.obj, key)?
            && current.as_ref() == &value
        {
            return Ok(());
        }
        self.doc.put(&self.obj, key, value)?;
        Ok(())
    }

    pub fn remove(&mut self, key: &str) -> Result<(), StoreError> {
        if self.doc.get(&self.obj, key)?.is_some() {
            self.doc.delete(&self.obj, key)?;
        }
        Ok(())
    }

    /// The nested map at `key`, created if absent.
    pub fn map(&mut self, key: &str) -> Result<MapWriter<'_>, StoreError> {
        let obj = child_map(self.doc, &self.obj, key)?;
        Ok(MapWriter {
            doc: self.doc,
            obj,
            record: self.record,
        })
    }

    pub fn nested<T: Fields>(&mut self, key: &str, value: &T) -> Result<(), StoreError> {
        value.write(&mut self.map(key)?)
    }

    pub fn nested_opt<T: Fields>(
        &mut self,
        key: &str,
        value: Option<&T>,
    ) -> Result<(), StoreError> {
        match value {
            Some(value) => self.nested(key, value),
            None => self.remove(key),
        }
    }

    /// Writes a map of items keyed by id: new items are added, changed items reconciled
    /// field by field, items no longer present removed.
    pub fn items<T: Fields>(
        &mut self,
        key: &str,
        items: &BTreeMap<RecordId, T>,
    ) -> Result<(), StoreError> {
        let mut map = self.map(key)?;
        map.retain(|k| items.keys().any(|id| id.as_str() == k))?;
        for (id, item) in items {
            item.write(&mut map.map(id.as_str())?)?;
        }
        Ok(())
    }

    /// Writes a set of ids as a map of `id → true`, so concurrent additions all survive.
    pub fn set(&mut self, key: &str, ids: &BTreeSet<RecordId>) -> Result<(), StoreError> {
        let mut map = self.map(key)?;
        map.retain(|k| ids.iter().any(|id| id.as_str() == k))?;
        for id in ids {
            map.scalar(id.as_str(), ScalarValue::Boolean(true))?;
        }
        Ok(())
    }

    /// Deletes every key for which `keep` is false.
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) -> Result<(), StoreError> {
        let gone: Vec<String> = self.doc.keys(&self.obj).filter(|k| !keep(k)).collect();
        for key in gone {
            self.doc.delete(&self.obj, key.as_str())?;
        }
        Ok(())
    }
}

/// Reads the fields of one map, naming the record and field in every error.
///
/// Two replicas that create the same map concurrently (the first redemption of a pass at two
/// gates, say) make two automerge objects under one key, of which `get` shows only one. A
/// reader therefore stands for every map object at its path: keys are the union of theirs,
/// and a scalar comes from the first object, in automerge's winning order, that holds it. So
/// no entry is ever hidden by such a conflict.
///
/// The first key is looked up alone; from the second on, the reader reads every key of its
/// objects in one pass and answers from that. A lookup in a document seeks through its
/// operations (about 6 µs in a resort's bookings), one pass over a record's map costs about
/// what one lookup does, and a record is read a dozen fields at a time.
#[derive(Debug, Clone)]
pub struct MapReader<'a> {
    doc: &'a AutoCommit,
    /// The winning object first, then the others in operation order.
    objs: Vec<ObjId>,
    record: &'static str,
    /// Each object's keys and winning values, sorted by key, once a second key is read.
    entries: OnceCell<Vec<Vec<MapRangeItem<'a>>>>,
    lookups: Cell<u32>,
}

impl<'a> MapReader<'a> {
    pub fn new(doc: &'a AutoCommit, obj: ObjId, record: &'static str) -> Self {
        Self::over(doc, vec![obj], record)
    }

    fn over(doc: &'a AutoCommit, objs: Vec<ObjId>, record: &'static str) -> Self {
        Self {
            doc,
            objs,
            record,
            entries: OnceCell::new(),
            lookups: Cell::new(0),
        }
    }

    /// The document root, read as a map.
    pub fn root(doc: &'a AutoCommit, record: &'static str) -> Self {
        Self::new(doc, ROOT, record)
    }

    pub fn get<F: Field>(&self, key: &str) -> Result<F, StoreError> {
        F::get(self, key)
    }

    /// The winning scalar at `key`, if any.
    pub fn scalar(&self, key: &str) -> Result<Option<ScalarValue>, StoreError> {
        let entries = self.entries();
        for (index, obj) in self.objs.iter().enumerate() {
            let value = match entries {
                Some(entries) => {
                    find(&entries[index], key).map(|item| item.value.clone().into_value())
                }
                None => self.doc.get(obj, key)?.map(|(value, _)| value),
            };
            match value {
                None => continue,
                Some(Value::Scalar(value)) => return Ok(Some(value.into_owned())),
                Some(Value::Object(kind)) => {
                    return Err(self.wrong_type(key, "a scalar", kind));
                }
            }
        }
        Ok(None)
    }

    /// Each object's entries, once this reader has been asked for more than one key.
    fn entries(&self) -> Option<&[Vec<MapRangeItem<'a>>]> {
        if let Some(entries) = self.entries.get() {
            return Some(entries);
        }
        let lookups = self.lookups.get();
        self.lookups.set(lookups + 1);
        if lookups == 0 {
            return None;
        }
        let entries = self.entries.get_or_init(|| {
            self.objs
                .iter()
                .map(|obj| {
                    let mut items: Vec<MapRangeItem<'a>> = self.doc.map_range(obj, ..).collect();
                    items.sort_by(|a, b| a.key.cmp(&b.key));
                    items
                })
                .collect()
        });
        Some(entries)
    }

    /// Every concurrently written scalar at `key` (more than one means a conflict).
    pub fn all_scalars(&self, key: &str) -> Result<Vec<ScalarValue>, StoreError> {
        for obj in &self.objs {
            let values = self.doc.get_all(obj, key)?;
            if values.is_empty() {
                continue;
            }
            return Ok(values
                .into_iter()
                .filter_map(|(value, _)| match value {
                    Value::Scalar(value) => Some(value.into_owned()),
                    Value::Object(_) => None,
                })
                .collect());
        }
        Ok(Vec::new())
    }

    pub fn required(&self, key: &str) -> Result<ScalarValue, StoreError> {
        self.scalar(key)?.ok_or_else(|| self.missing(key))
    }

    /// Every map object at `key` in any of this reader's objects, as one reader.
    pub fn map(&self, key: &str) -> Result<Option<MapReader<'a>>, StoreError> {
        let entries = self.entries();
        let mut objs = Vec::new();
        for (index, obj) in self.objs.iter().enumerate() {
            // Whether other values stand beside the winner is known from a pass, not a lookup.
            let winner = match entries {
                Some(entries) => find(&entries[index], key)
                    .map(|item| (item.value.clone().into_value(), item.id(), item.conflict)),
                None => self
                    .doc
                    .get(obj, key)?
                    .map(|(value, id)| (value.into_owned(), id, true)),
            };
            let Some((value, winner_id, conflict)) = winner else {
                continue;
            };
            if !matches!(value, Value::Object(ObjType::Map)) {
                return Err(self.wrong_type(key, "a map", value));
            }
            objs.push(winner_id.clone());
            if !conflict {
                continue;
            }
            for (value, id) in self.doc.get_all(obj, key)? {
                if matches!(value, Value::Object(ObjType::Map)) && id != winner_id {
                    objs.push(id);
                }
            }
        }
        if objs.is_empty() {
            return Ok(None);
        }
        Ok(Some(MapReader::over(self.doc, objs, self.record)))
    }

    /// Follows a path of nested maps.
    pub fn path(&self, keys: &[&str]) -> Result<Option<MapReader<'a>>, StoreError> {
        let mut here = self.clone();
        for key in keys {
            match here.map(key)? {
                Some(next) => here = next,
                None => return Ok(None),
            }
        }
        Ok(Some(here))
    }

    pub fn nested<T: Fields>(&self, key: &str) -> Result<T, StoreError> {
        let map = self.map(key)?.ok_or_else(|| self.missing(key))?;
        T::read(&map)
    }

    pub fn nested_opt<T: Fields>(&self, key: &str) -> Result<Option<T>, StoreError> {
        self.map(key)?.map(|map| T::read(&map)).transpose()
    }

    pub fn items<T: Fields>(&self, key: &str) -> Result<BTreeMap<RecordId, T>, StoreError> {
        let Some(map) = self.map(key)? else {
            return Ok(BTreeMap::new());
        };
        map.children()
    }

    /// Every child map of this map, read as `T` and keyed by id.
    pub fn children<T: Fields>(&self) -> Result<BTreeMap<RecordId, T>, StoreError> {
        let mut items = BTreeMap::new();
        for id in self.keys() {
            let item = self.nested(&id)?;
            items.insert(self.id(&id)?, item);
        }
        Ok(items)
    }

    pub fn set(&self, key: &str) -> Result<BTreeSet<RecordId>, StoreError> {
        let Some(map) = self.map(key)? else {
            return Ok(BTreeSet::new());
        };
        map.keys().iter().map(|id| self.id(id)).collect()
    }

    /// The keys of this map (of all its objects), sorted.
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .objs
            .iter()
            .flat_map(|obj| self.doc.keys(obj))
            .collect();
        if self.objs.len() > 1 {
            keys.sort();
            keys.dedup();
        }
        keys
    }

    pub fn record(&self) -> &'static str {
        self.record
    }

    pub fn invalid(&self, source: InputError) -> StoreError {
        StoreError::Invalid {
            record: self.record,
            source,
        }
    }

    pub fn id(&self, value: &str) -> Result<RecordId, StoreError> {
        RecordId::new("key", value).map_err(|e| self.invalid(e))
    }

    fn missing(&self, key: &str) -> StoreError {
        StoreError::Missing {
            record: self.record,
            field: key.to_owned(),
        }
    }

    fn wrong_type(
        &self,
        key: &str,
        expected: &'static str,
        found: impl std::fmt::Debug,
    ) -> StoreError {
        let found = format!("{found:?}");
        StoreError::WrongType {
            record: self.record,
            field: key.to_owned(),
            expected,
            found,
        }
    }
}

/// The entry at `key` of entries sorted by key.
fn find<'i, 'a>(entries: &'i [MapRangeItem<'a>], key: &str) -> Option<&'i MapRangeItem<'a>> {
    entries
        .binary_search_by(|item| item.key.as_ref().cmp(key))
        .ok()
        .map(|at| &entries[at])
}

/// The map at `parent.key`, created if absent.
pub(crate) fn child_map(
    doc: &mut AutoCommit,
    parent: &ObjId,
    key: &str,
) -> Result<ObjId, StoreError> {
    match doc.get(parent, key)? {
        Some((Value::Object(ObjType::Map), obj)) => Ok(obj),
        _ => Ok(doc.put_object(parent, key, ObjType::Map)?),
    }
}

/// Makes sure `doc` holds records of `scope`, marking a fresh document with it.
pub fn claim_scope(
    doc: &mut AutoCommit,
    scope: Scope,
    record: &'static str,
) -> Result<(), StoreError> {
    match doc.get(ROOT, "scope")? {
        Some((Value::Scalar(found), _)) if found.as_str() == Some(scope.name()) => Ok(()),
        Some((found, _)) => Err(StoreError::ScopeMismatch {
            record,
            expected: scope.name(),
            found: format!("{found}"),
        }),
        None => {
            doc.put(ROOT, "scope", scope.name())?;
            Ok(())
        }
    }
}

/// The scope `doc` holds, if it has been marked.
pub fn scope_of(doc: &AutoCommit) -> Option<Scope> {
    let (value, _) = doc.get(ROOT, "scope").ok()??;
    let name = value.as_str()?.to_owned();
    Scope::ALL.into_iter().find(|scope| scope.name() == name)
}

/// A writer for the map of record `id` of type `R`, created if absent.
pub(crate) fn record_writer<'a, R: Record>(
    doc: &'a mut AutoCommit,
    id: &RecordId,
) -> Result<MapWriter<'a>, StoreError> {
    claim_scope(doc, R::SCOPE, R::COLLECTION)?;
    let collection = child_map(doc, &ROOT, R::COLLECTION)?;
    let obj = child_map(doc, &collection, id.as_str())?;
    Ok(MapWriter::new(doc, obj, R::COLLECTION))
}

/// A reader for the map of record `id` of type `R`, if it exists.
pub(crate) fn record_reader<'a, R: Record>(
    doc: &'a AutoCommit,
    id: &RecordId,
) -> Result<Option<MapReader<'a>>, StoreError> {
    MapReader::root(doc, R::COLLECTION).path(&[R::COLLECTION, id.as_str()])
}

/// Creates or updates a record, writing only the fields that changed.
pub fn put<R: Record>(doc: &mut AutoCommit, record: &R) -> Result<(), StoreError> {
    record.write(&mut record_writer::<R>(doc, record.id())?)
}

/// Creates a record that must not exist yet (a sale, a payment, a check-in).
pub fn insert<R: Record>(doc: &mut AutoCommit, record: &R) -> Result<(), StoreError> {
    if record_reader::<R>(doc, record.id())?.is_some() {
        return Err(StoreError::Exists {
            record: R::COLLECTION,
            id: record.id().to_string(),
        });
    }
    put(doc, record)
}

pub fn get<R: Record>(doc: &AutoCommit, id: &RecordId) -> Result<Option<R>, StoreError> {
    record_reader::<R>(doc, id)?
        .map(|r| R::read(&r))
        .transpose()
}

/// Like [`get`], for a record that must exist.
pub fn fetch<R: Record>(doc: &AutoCommit, id: &RecordId) -> Result<R, StoreError> {
    get(doc, id)?.ok_or_else(|| StoreError::NotFound {
        record: R::COLLECTION,
        id: id.to_string(),
    })
}

/// Every record of type `R` in `doc`, in id order.
pub fn list<R: Record>(doc: &AutoCommit) -> Result<Vec<R>, StoreError> {
    let root = MapReader::root(doc, R::COLLECTION);
    let Some(collection) = root.map(R::COLLECTION)? else {
        return Ok(Vec::new());
    };
    let records: BTreeMap<RecordId, R> = collection.children()?;
    Ok(records.into_values().collect())
}

fn scalar_str(r: &MapReader<'_>, key: &str) -> Result<String, StoreError> {
    match r.required(key)? {
        ScalarValue::Str(s) => Ok(s.to_string()),
        other => Err(StoreError::WrongType {
            record: r.record(),
            field: key.to_owned(),
            expected: "a string",
            found: format!("{other:?}"),
        }),
    }
}

fn scalar_uint(r: &MapReader<'_>, key: &str) -> Result<u64, StoreError> {
    match r.required(key)? {
        ScalarValue::Uint(n) => Ok(n),
        other => Err(StoreError::WrongType {
            record: r.record(),
            field: key.to_owned(),
            expected: "an unsigned integer",
            found: format!("{other:?}"),
        }),
    }
}

impl Field for String {
    fn put(&self, w: &mut MapWriter<'_>, key: &str) -> Result<(), StoreError> {
        w.scalar(key, ScalarValue::Str(self.as_str().into()))
    }

    fn get(r: &MapReader<'_>, key: &str) -> Result<Self, StoreError> {
        scalar_str(r, key)
    }
}

impl Field for u64 {
    fn put(&self, w: &mut MapWriter<'_>, key: &str) -> Result<(), StoreError> {
        w.scalar(key, ScalarValue::Uint(*self))
    }

    fn get(r: &MapReader<'_>, key: &str) -> Result<Self, StoreError> {
        scalar_uint(r, key)
    }
}

impl Field for u32 {
    fn put(&self, w: &mut MapWriter<'_>, key: &str) -> Result<(), StoreError> {
        w.scalar(key, ScalarValue::Uint(u64::from(*self)))
    }

    fn get(r: &MapReader<'_>, key: &str) -> Result<Self, StoreError> {
        let n = scalar_uint(r, key)?;
        u32::try_from(n).map_err(|_| {
            let field = "u32";
            r.invalid(InputError::Number {
                field,
                value: i128::from(n),
                reason: "is too large",
            })
        })
    }
}

impl Field for bool {
    fn put(&self, w: &mut MapWriter<'_>, key: &str) -> Result<(), StoreError> {
        w.scalar(key, ScalarValue::Boolean(*self))
    }

    fn get(r: &MapReader<'_>, key: &str) -> Result<Self, StoreError> {
        match r.required(key)? {
            ScalarValue::Boolean(b) => Ok(b),
            other => Err(StoreError::WrongType {
                record: r.record(),
                field: key.to_owned(),
                expected: "a boolean",
                found: format!("{other:?}"),
            }),
        }
    }
}

impl<T: Field> Field for Option<T> {
    fn put(&self, w: &mut MapWriter<'_>, key: &str) -> Result<(), StoreError> {
        match self {
            Some(value) => value.put(w, key),
            None => w.remove(key),
        }
    }

    fn get(r: &MapReader<'_>, key: &str) -> Result<Self, StoreError> {
        match r.scalar(key)? {
            None => Ok(None),
            Some(_) => T::get(r, key).map(Some),
        }
    }
}

/// Implements [`Field`] for a validated string type through its constructor.
macro_rules! string_field {
    ($ty:ty, $to:expr, $from:expr) => {
        impl Field for $ty {
            fn put(&self, w: &mut MapWriter<'_>, key: &str) -> Result<(), StoreError> {
                let text: String = $to(self);
                w.scalar(key, ScalarValue::Str(text.into()))
            }

            fn get(r: &MapReader<'_>, key: &str) -> Result<Self, StoreError> {
                let text = scalar_str(r, key)?;
                $from(text.as_str()).map_err(|e| r.invalid(e))
            }
        }
    };
}

string_field!(RecordId, |v: &RecordId| v.as_str().to_owned(), |s| {
    RecordId::new("id", s)
});
string_field!(NodeRef, |v: &NodeRef| v.as_str().to_owned(), |s| {
    NodeRef::new("node", s)
});
string_field!(Phone, |v: &Phone| v.as_str().to_owned(), |s| Phone::new(
    "phone", s
));
string_field!(IdCard, |v: &IdCard| v.as_str().to_owned(), |s| IdCard::new(
    "id_card", s
));
string_field!(Text, |v: &Text| v.as_str().to_owned(), |s| Text::new(
    "text", s
));
string_field!(PersonName, |v: &PersonName| v.as_str().to_owned(), |s| {
    PersonName::new("name", s)
});
string_field!(
    NaiveDate,
    |v: &NaiveDate| v.format("%Y-%m-%d").to_string(),
    |s| parse_date("date", s)
);
string_field!(IdDocument, IdDocument::encode, |s| IdDocument::decode(
    "document", s
));
string_field!(PublicKey, |v: &PublicKey| v.to_hex(), |s| {
    PublicKey::from_hex("key", s)
});

impl Field for Vnd {
    fn put(&self, w: &mut MapWriter<'_>, key: &str) -> Result<(), StoreError> {
        w.scalar(key, ScalarValue::Uint(self.get()))
    }

    fn get(r: &MapReader<'_>, key: &str) -> Result<Self, StoreError> {
        let amount = scalar_uint(r, key)?;
        Vnd::new("amount", i128::from(amount)).map_err(|e| r.invalid(e))
    }
}

impl Field for Timestamp {
    fn put(&self, w: &mut MapWriter<'_>, key: &str) -> Result<(), StoreError> {
        w.scalar(key, ScalarValue::Timestamp(self.millis()))
    }

    fn get(r: &MapReader<'_>, key: &str) -> Result<Self, StoreError> {
        match r.required(key)? {
            ScalarValue::Timestamp(ms) => {
                Timestamp::from_millis("at", ms).map_err(|e| r.invalid(e))
            }
            other => Err(StoreError::WrongType {
                record: r.record(),
                field: key.to_owned(),
                expected: "a timestamp",
                found: format!("{other:?}"),
            }),
        }
    }
}

/// Declares an enum stored as a short lowercase tag, with [`Field`] and parsing.
macro_rules! tag_enum {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $tag:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub const fn tag(self) -> &'static str {
                match self {
                    $($name::$variant => $tag),+
                }
            }

            pub fn parse(
                field: &'static str,
                value: &str,
            ) -> Result<Self, $crate::records::values::InputError> {
                match value {
                    $($tag => Ok($name::$variant),)+
                    _ => Err($crate::records::values::InputError::Choice {
                        field,
                        value: value.to_owned(),
                        allowed: concat!($($tag, " "),+),
                    }),
                }
            }
        }

        impl $crate::records::store::Field for $name {
            fn put(
                &self,
                w: &mut $crate::records::store::MapWriter<'_>,
                key: &str,
            ) -> Result<(), $crate::records::store::StoreError> {
                w.put(key, &self.tag().to_owned())
            }

            fn get(
                r: &$crate::records::store::MapReader<'_>,
                key: &str,
            ) -> Result<Self, $crate::records::store::StoreError> {
                let tag: String = r.get(key)?;
                $name::parse(stringify!($name), &tag).map_err(|e| r.invalid(e))
            }
        }
    };
}

pub(crate) use tag_enum;

#[cfg(test)]
mod tests {
    use automerge::ActorId;

    use super::*;

    /// Two replicas create the same record map concurrently, each with its own fields, and
    /// set one field to different values; the merge holds two maps under one key.
    fn conflicting() -> AutoCommit {
        let mut base = AutoCommit::new().with_actor(ActorId::from(&[1u8; 16][..]));
        base.put_object(ROOT, "items", ObjType::Map).unwrap();
        let mut a = base.fork().with_actor(ActorId::from(&[2u8; 16][..]));
        let mut b = base.fork().with_actor(ActorId::from(&[3u8; 16][..]));
        for (doc, own, side) in [(&mut a, "at_gate_a", "a"), (&mut b, "at_gate_b", "b")] {
            let items = doc.get(ROOT, "items").unwrap().unwrap().1;
            let item = doc.put_object(&items, "x", ObjType::Map).unwrap();
            doc.put(&item, own, 1_i64).unwrap();
            doc.put(&item, "shared", side).unwrap();
        }
        a.merge(&mut b).unwrap();
        a
    }

    #[test]
    fn a_reader_answers_the_same_from_a_lookup_and_from_a_pass() {
        let doc = conflicting();
        let root = MapReader::root(&doc, "test");
        let item = root.path(&["items", "x"]).unwrap().unwrap();
        assert_eq!(item.objs.len(), 2, "both concurrent maps are read");
        // The same through a reader that already took its pass.
        let items = root.map("items").unwrap().unwrap();
        assert_eq!(items.scalar("absent").unwrap(), None);
        let through_pass = items.map("x").unwrap().unwrap();
        assert!(items.entries.get().is_some());
        assert_eq!(through_pass.objs, item.objs);

        // A fresh reader answers its first key by lookup, the rest from one pass.
        for key in ["shared", "at_gate_a", "at_gate_b", "missing"] {
            let by_lookup = root
                .path(&["items", "x"])
                .unwrap()
                .unwrap()
                .scalar(key)
                .unwrap();
            let by_pass = item.scalar(key).unwrap();
            assert_eq!(by_lookup, by_pass, "{key}");
        }
        assert!(item.entries.get().is_some(), "the pass was taken");
        assert_eq!(item.scalar("at_gate_a").unwrap(), Some(ScalarValue::Int(1)));
        assert_eq!(item.scalar("at_gate_b").unwrap(), Some(ScalarValue::Int(1)));
        assert_eq!(item.keys(), vec!["at_gate_a", "at_gate_b", "shared"]);
    }

    #[test]
    fn a_wrong_type_is_named_whichever_way_the_key_is_read() {
        let doc = conflicting();
        let root = MapReader::root(&doc, "test");
        let items = root.map("items").unwrap().unwrap();
        let first = items.scalar("x").unwrap_err();
        let later = items.scalar("x").unwrap_err();
        assert!(items.entries.get().is_some());
        for err in [first, later] {
            assert!(
                matches!(&err, StoreError::WrongType { field, .. } if field == "x"),
                "{err}"
            );
        }
    }
}
