//! Validated values that records are made of: ids, node names, money, phone and citizen-id
//! numbers, text, times and date ranges.
//!
//! Every constructor takes the name of the field it fills, so that an [`InputError`] says
//! which field was wrong and what it held. Values read back from a document go through the
//! same constructors: a document written by a faulty peer is refused, not trusted.

use std::fmt;

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, Offset, Utc};

/// Longest id or node name, in bytes.
pub const MAX_ID_LEN: usize = 64;

/// Largest amount of money a record may carry: one thousand billion VND.
pub const MAX_VND: u64 = 1_000_000_000_000;

/// Earliest and latest instants a record may carry (2000-01-01 and 2200-01-01 UTC, in ms).
const MIN_TIMESTAMP_MS: i64 = 946_684_800_000;
const MAX_TIMESTAMP_MS: i64 = 7_258_118_400_000;

/// Longest stay or rental a booking or registration may cover.
pub const MAX_NIGHTS: i64 = 366;

/// An input that does not have the shape its field needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    #[error(
        "{field}: {value:?} is not an id (1 to {MAX_ID_LEN} characters of a-z, 0-9, '-', '_', \
         '.' or ':', starting with a letter or digit)"
    )]
    Id { field: &'static str, value: String },
    #[error(
        "{field}: {value:?} is not a Vietnamese phone number (10-digit mobile starting 03, 05, \
         07, 08 or 09, 11-digit landline starting 02, optionally written +84)"
    )]
    Phone { field: &'static str, value: String },
    #[error("{field}: {value:?} is not a 12-digit citizen id number with a province code 001-096")]
    IdCard { field: &'static str, value: String },
    #[error("{field}: {value:?} {reason}")]
    Text {
        field: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("{field}: {value} VND {reason}")]
    Money {
        field: &'static str,
        value: i128,
        reason: &'static str,
    },
    #[error("{field}: {value:?} is not a date written YYYY-MM-DD")]
    Date { field: &'static str, value: String },
    #[error("{field}: {value} ms is outside 2000-01-01..2200-01-01 UTC")]
    Timestamp { field: &'static str, value: i64 },
    #[error("{field}: {value} {reason}")]
    Range {
        field: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("{field}: {value:?} is not one of {allowed}")]
    Choice {
        field: &'static str,
        value: String,
        allowed: &'static str,
    },
    #[error("{field}: {value} {reason}")]
    Number {
        field: &'static str,
        value: i128,
        reason: &'static str,
    },
    #[error("{field}: {value:?} is not a 64-hex-digit ed25519 public key")]
    Key { field: &'static str, value: String },
}

fn is_id_shaped(value: &str) -> bool {
    let allowed = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.:".contains(&b);
    let starts_well = value
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric());
    (1..=MAX_ID_LEN).contains(&value.len()) && starts_well && value.bytes().all(allowed)
}

/// The id of a record or of an item inside one: `pass-2025-0001`, `tam-thanh`, `room:12`.
///
/// Ids are chosen by the caller (a box names what it creates, usually after its own name and
/// a sequence number), never drawn at random here.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordId(String);

impl RecordId {
    pub fn new(field: &'static str, value: &str) -> Result<Self, InputError> {
        if !is_id_shaped(value) {
            return Err(InputError::Id {
                field,
                value: value.to_owned(),
            });
        }
        Ok(Self(value.to_owned()))
    }

    /// An id derived from other ids (`conflict-1f0c…`): the same on every replica that
    /// derives it, short whatever the length of its parts.
    pub fn derived(prefix: &'static str, parts: &[&str]) -> Self {
        let digest = blake3::hash(parts.join("/").as_bytes());
        Self(format!("{prefix}-{}", &digest.to_hex()[..16]))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A box, named as the records name it: its site name (`port-tam-thanh`) or the hex form of
/// its key. Records only compare node names; proving who a node is belongs to the replica
/// core, which signs every change.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeRef(String);

impl NodeRef {
    pub fn new(field: &'static str, value: &str) -> Result<Self, InputError> {
        if !is_id_shaped(value) {
            return Err(InputError::Id {
                field,
                value: value.to_owned(),
            });
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NodeRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An amount of Vietnamese đồng: a whole number, never negative, at most [`MAX_VND`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Vnd(u64);

impl Vnd {
    pub const ZERO: Vnd = Vnd(0);

    pub fn new(field: &'static str, amount: i128) -> Result<Self, InputError> {
        if amount < 0 {
            return Err(InputError::Money {
                field,
                value: amount,
                reason: "is negative",
            });
        }
        if amount > i128::from(MAX_VND) {
            return Err(InputError::Money {
                field,
                value: amount,
                reason: "is too large",
            });
        }
        // Cannot fail: 0 <= amount <= MAX_VND < u64::MAX.
        Ok(Self(u64::try_from(amount).unwrap_or(MAX_VND)))
    }

    /// An amount that must be more than zero: a payment, a top-up, a move of allowance.
    pub fn positive(field: &'static str, amount: i128) -> Result<Self, InputError> {
        if amount == 0 {
            return Err(InputError::Money {
                field,
                value: 0,
                reason: "must be more than zero",
            });
        }
        Self::new(field, amount)
    }

    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Vnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} VND", self.0)
    }
}

/// A Vietnamese phone number, kept in its national form (`0912345678`, `02523769123`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Phone(String);

impl Phone {
    pub fn new(field: &'static str, value: &str) -> Result<Self, InputError> {
        let err = || InputError::Phone {
            field,
            value: value.to_owned(),
        };
        let compact: String = value
            .chars()
            .filter(|c| !matches!(c, ' ' | '.' | '-'))
            .collect();
        let national = match compact.strip_prefix("+84") {
            Some(rest) => format!("0{rest}"),
            None => compact,
        };
        if !national.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }

        let bytes = national.as_bytes();
        let mobile = bytes.len() == 10 && bytes[0] == b'0' && b"35789".contains(&bytes[1]);
        let landline = bytes.len() == 11 && bytes.starts_with(b"02");
        if !(mobile || landline) {
            return Err(err());
        }
        Ok(Self(national))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The 12-digit personal id number of a Vietnamese citizen id card (CCCD). Its first three
/// digits are the province of birth registration (060 Bình Thuận, 068 Lâm Đồng).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IdCard(String);

impl IdCard {
    pub fn new(field: &'static str, value: &str) -> Result<Self, InputError> {
        let err = || InputError::IdCard {
            field,
            value: value.to_owned(),
        };
        if value.len() != 12 || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err());
        }
        let province: u32 = value[..3].parse().map_err(|_| err())?;
        if !(1..=96).contains(&province) {
            return Err(err());
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Free text (Vietnamese or English): trimmed, not empty, no control characters except line
/// breaks, at most a given number of characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Text(String);

impl Text {
    /// Longest text a record field may hold unless its type says less.
    pub const MAX_CHARS: usize = 4000;

    pub fn new(field: &'static str, value: &str) -> Result<Self, InputError> {
        Self::bounded(field, value, Self::MAX_CHARS)
    }

    pub fn bounded(field: &'static str, value: &str, max_chars: usize) -> Result<Self, InputError> {
        let err = |reason| InputError::Text {
            field,
            value: value.to_owned(),
            reason,
        };
        if value.trim().is_empty() {
            return Err(err("is empty"));
        }
        if value.trim() != value {
            return Err(err("starts or ends with white space"));
        }
        if value.chars().any(|c| c.is_control() && c != '\n') {
            return Err(err("contains a control character"));
        }
        if value.chars().count() > max_chars {
            return Err(err("is too long"));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A person's name as written on their documents (`Nguyễn Thị Hoa`): letters of any script,
/// spaces, apostrophes, hyphens and dots, at most 100 characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PersonName(String);

impl PersonName {
    pub fn new(field: &'static str, value: &str) -> Result<Self, InputError> {
        let text = Text::bounded(field, value, 100)?;
        let name_char = |c: char| c.is_alphabetic() || is_combining_mark(c) || " '-.".contains(c);
        if !value.chars().all(name_char) || value.contains('\n') {
            let reason = "holds a character that is not a letter, space, ', - or .";
            return Err(InputError::Text {
                field,
                value: value.to_owned(),
                reason,
            });
        }
        Ok(Self(text.0))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The combining diacritics Vietnamese text uses when it arrives decomposed (NFD).
fn is_combining_mark(c: char) -> bool {
    matches!(c, '\u{0300}'..='\u{036f}')
}

/// An instant, in milliseconds since 1970-01-01 UTC. Records keep UTC; a site's offset is
/// applied only to display an instant or to find the local day it falls on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    pub fn from_millis(field: &'static str, ms: i64) -> Result<Self, InputError> {
        if !(MIN_TIMESTAMP_MS..MAX_TIMESTAMP_MS).contains(&ms) {
            return Err(InputError::Timestamp { field, value: ms });
        }
        Ok(Self(ms))
    }

    pub const fn millis(self) -> i64 {
        self.0
    }

    /// RFC 3339 with the site's offset and whole seconds (`2025-04-30T08:15:00+07:00`), the
    /// form CAP and FHIR expect.
    pub fn display(self, offset: SiteOffset) -> String {
        self.local(offset)
            .format("%Y-%m-%dT%H:%M:%S%:z")
            .to_string()
    }

    /// The calendar day this instant falls on at the site.
    pub fn local_date(self, offset: SiteOffset) -> NaiveDate {
        self.local(offset).date_naive()
    }

    fn local(self, offset: SiteOffset) -> DateTime<FixedOffset> {
        // In range by construction (2000..2200), which chrono represents exactly.
        let utc = DateTime::from_timestamp_millis(self.0).unwrap_or_default();
        utc.with_timezone(&offset.0)
    }
}

/// A site's offset from UTC, used for display and for cutting days in statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SiteOffset(FixedOffset);

impl SiteOffset {
    /// Indochina Time, UTC+07:00, the offset of every site in Vietnam.
    pub fn vietnam() -> Self {
        Self(FixedOffset::east_opt(7 * 3600).unwrap_or(Utc.fix()))
    }

    pub fn from_minutes(field: &'static str, minutes: i32) -> Result<Self, InputError> {
        let offset = FixedOffset::east_opt(minutes.saturating_mul(60));
        offset
            .filter(|_| minutes.abs() <= 14 * 60)
            .map(Self)
            .ok_or(InputError::Number {
                field,
                value: i128::from(minutes),
                reason: "minutes is not an offset from UTC",
            })
    }
}

/// Reads a calendar date written `YYYY-MM-DD`.
pub fn parse_date(field: &'static str, value: &str) -> Result<NaiveDate, InputError> {
    let date = NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|_| InputError::Date {
        field,
        value: value.to_owned(),
    })?;
    if !(1900..2200).contains(&date.year()) {
        return Err(InputError::Date {
            field,
            value: value.to_owned(),
        });
    }
    Ok(date)
}

/// The nights of a stay or the days of a rental: from `start` (the first night) up to, not
/// including, `end` (the day of leaving). At least one night, at most [`MAX_NIGHTS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DateRange {
    start: NaiveDate,
    end: NaiveDate,
}

impl DateRange {
    pub fn new(field: &'static str, start: NaiveDate, end: NaiveDate) -> Result<Self, InputError> {
        let nights = (end - start).num_days();
        if !(1..=MAX_NIGHTS).contains(&nights) {
            let value = format!("{start}..{end}");
            let reason = "must cover 1 to 366 nights (end is the day of leaving)";
            return Err(InputError::Range {
                field,
                value,
                reason,
            });
        }
        Ok(Self { start, end })
    }

    pub const fn start(&self) -> NaiveDate {
        self.start
    }

    pub const fn end(&self) -> NaiveDate {
        self.end
    }

    pub fn nights(&self) -> u32 {
        // Between 1 and MAX_NIGHTS by construction.
        u32::try_from((self.end - self.start).num_days()).unwrap_or(0)
    }

    /// Whether the two ranges share a night. Leaving on the day another guest arrives is not
    /// an overlap.
    pub fn overlaps(&self, other: &DateRange) -> bool {
        self.start < other.end && other.start < self.end
    }

    pub fn contains(&self, night: NaiveDate) -> bool {
        self.start <= night && night < self.end
    }
}

/// A document that identifies a person: a citizen id card or a foreign passport.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IdDocument {
    Citizen(IdCard),
    /// Passport number and issuing country (ISO 3166 alpha-2, `KR`).
    Passport {
        number: String,
        country: String,
    },
}

impl IdDocument {
    pub fn passport(field: &'static str, number: &str, country: &str) -> Result<Self, InputError> {
        let number_ok = (6..=12).contains(&number.len())
            && number
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        if !number_ok {
            let reason = "is not a passport number (6 to 12 of A-Z, 0-9)";
            return Err(InputError::Text {
                field,
                value: number.to_owned(),
                reason,
            });
        }
        let country_ok = country.len() == 2 && country.bytes().all(|b| b.is_ascii_uppercase());
        if !country_ok {
            let reason = "is not a two-letter country code";
            return Err(InputError::Text {
                field,
                value: country.to_owned(),
                reason,
            });
        }
        Ok(Self::Passport {
            number: number.to_owned(),
            country: country.to_owned(),
        })
    }

    /// One text form, stored in records: `cccd:060201001234` or `passport:KR:M12345678`.
    pub fn encode(&self) -> String {
        match self {
            Self::Citizen(card) => format!("cccd:{}", card.as_str()),
            Self::Passport { number, country } => format!("passport:{country}:{number}"),
        }
    }

    pub fn decode(field: &'static str, value: &str) -> Result<Self, InputError> {
        if let Some(card) = value.strip_prefix("cccd:") {
            return IdCard::new(field, card).map(Self::Citizen);
        }
        match value
            .strip_prefix("passport:")
            .and_then(|rest| rest.split_once(':'))
        {
            Some((country, number)) => Self::passport(field, number, country),
            None => Err(InputError::Choice {
                field,
                value: value.to_owned(),
                allowed: "cccd:<12 digits> or passport:<country>:<number>",
            }),
        }
    }

    pub fn is_citizen(&self) -> bool {
        matches!(self, Self::Citizen(_))
    }
}

/// A holder's ed25519 signing public key, checked to be a valid curve point.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    pub fn from_hex(field: &'static str, value: &str) -> Result<Self, InputError> {
        let err = || InputError::Key {
            field,
            value: value.to_owned(),
        };
        let mut bytes = [0u8; 32];
        if value.len() != 64 || value.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(err());
        }
        hex::decode_to_slice(value, &mut bytes).map_err(|_| err())?;
        ed25519_dalek::VerifyingKey::from_bytes(&bytes).map_err(|_| err())?;
        Ok(Self(bytes))
    }

    pub fn to_hex(self) -> String {
        hex::encode(self.0)
    }

    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", hex::encode(&self.0[..4]))
    }
}
