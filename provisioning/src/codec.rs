//! The byte encoding shared by certificates, revocations and sealed files: big-endian
//! integers, strings and scopes prefixed by a one-byte length, and a hex text armor.
//!
//! Every length is bounded by its prefix, so a decoder never allocates more than the input.

use std::collections::BTreeSet;
use std::fmt;

use crdt_model::Scope;

/// Why bytes could not be decoded. Each owner maps it into its own error type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DecodeError {
    Truncated { needed: usize, remaining: usize },
    Malformed { reason: String },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated { needed, remaining } => {
                write!(
                    f,
                    "truncated: {needed} more bytes expected, {remaining} left"
                )
            }
            DecodeError::Malformed { reason } => f.write_str(reason),
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Writer(Vec<u8>);

impl Writer {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.extend_from_slice(bytes);
        self
    }

    pub(crate) fn u8(&mut self, value: u8) -> &mut Self {
        self.0.push(value);
        self
    }

    pub(crate) fn u32(&mut self, value: u32) -> &mut Self {
        self.bytes(&value.to_be_bytes())
    }

    pub(crate) fn u64(&mut self, value: u64) -> &mut Self {
        self.bytes(&value.to_be_bytes())
    }

    pub(crate) fn i64(&mut self, value: i64) -> &mut Self {
        self.bytes(&value.to_be_bytes())
    }

    /// A string of at most 255 bytes; every caller passes a validated, shorter name.
    pub(crate) fn short_str(&mut self, value: &str) -> &mut Self {
        let len = u8::try_from(value.len()).unwrap_or(u8::MAX);
        self.u8(len).bytes(&value.as_bytes()[..usize::from(len)])
    }

    /// A scope set, in ascending order (the only order a decoder accepts).
    pub(crate) fn scopes(&mut self, scopes: &BTreeSet<Scope>) -> &mut Self {
        let count = u8::try_from(scopes.len()).unwrap_or(u8::MAX);
        self.u8(count);
        for scope in scopes.iter().take(usize::from(count)) {
            self.short_str(scope.as_str());
        }
        self
    }

    pub(crate) fn finish(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.0)
    }
}

#[derive(Debug)]
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let remaining = self.bytes.len() - self.pos;
        if remaining < n {
            return Err(DecodeError::Truncated {
                needed: n,
                remaining,
            });
        }
        let out = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    pub(crate) fn i64(&mut self) -> Result<i64, DecodeError> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    pub(crate) fn short_str(&mut self, what: &str) -> Result<&'a str, DecodeError> {
        let len = self.u8()?;
        let bytes = self.take(usize::from(len))?;
        std::str::from_utf8(bytes).map_err(|_| DecodeError::Malformed {
            reason: format!("{what} is not UTF-8"),
        })
    }

    pub(crate) fn scopes(&mut self, what: &str) -> Result<BTreeSet<Scope>, DecodeError> {
        let count = self.u8()?;
        let mut out = BTreeSet::new();
        for _ in 0..count {
            let name = self.short_str(what)?;
            let scope = Scope::new(name).map_err(|err| DecodeError::Malformed {
                reason: format!("{what}: {err}"),
            })?;
            if out.last().is_some_and(|last| *last >= scope) {
                return Err(DecodeError::Malformed {
                    reason: format!("{what} are not in strictly ascending order"),
                });
            }
            out.insert(scope);
        }
        Ok(out)
    }

    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        let extra = self.bytes.len() - self.pos;
        if extra != 0 {
            return Err(DecodeError::Malformed {
                reason: format!("{extra} bytes after the end"),
            });
        }
        Ok(())
    }
}

const ARMOR_LINE_HEX: usize = 64;

/// Text armor: `-----BEGIN CULAO <LABEL>-----`, the bytes in lowercase hex (64 digits a
/// line), `-----END CULAO <LABEL>-----`. Hex rather than base64 so that an operator can
/// compare two files by eye and no extra dependency is needed.
pub(crate) fn armor(label: &str, bytes: &[u8]) -> String {
    let hex = hex::encode(bytes);
    let mut out = format!("-----BEGIN CULAO {label}-----\n");
    for chunk in hex.as_bytes().chunks(ARMOR_LINE_HEX) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END CULAO {label}-----\n"));
    out
}

/// The bytes inside `label`'s armor; blank lines and surrounding space are ignored.
pub(crate) fn unarmor(label: &str, text: &str) -> Result<Vec<u8>, DecodeError> {
    let begin = format!("-----BEGIN CULAO {label}-----");
    let end = format!("-----END CULAO {label}-----");
    let malformed = |reason: String| DecodeError::Malformed { reason };

    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    if lines.next() != Some(begin.as_str()) {
        return Err(malformed(format!("does not start with {begin:?}")));
    }
    let mut hex_text = String::new();
    let mut ended = false;
    for line in lines {
        if ended {
            return Err(malformed(format!("text after {end:?}")));
        }
        if line == end {
            ended = true;
            continue;
        }
        hex_text.push_str(line);
    }
    if !ended {
        return Err(DecodeError::Truncated {
            needed: end.len(),
            remaining: 0,
        });
    }
    if hex_text.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(malformed("hex digits must be lowercase".to_owned()));
    }
    hex::decode(&hex_text).map_err(|err| malformed(format!("bad hex: {err}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn armor_round_trips_and_refuses_other_labels() {
        let bytes: Vec<u8> = (0..=255).collect();
        let text = armor("CERTIFICATE", &bytes);
        assert!(
            text.lines()
                .all(|l| l.len() <= 64 || l.starts_with("-----"))
        );
        assert_eq!(unarmor("CERTIFICATE", &text), Ok(bytes));
        assert!(unarmor("REVOCATION", &text).is_err());
        let cut = &text[..text.len() - 30];
        assert!(matches!(
            unarmor("CERTIFICATE", cut),
            Err(DecodeError::Truncated { .. })
        ));
    }

    #[test]
    fn a_reader_reports_truncation_and_trailing_bytes() {
        let mut reader = Reader::new(&[1, 2, 3]);
        assert_eq!(reader.u8(), Ok(1));
        assert_eq!(
            reader.u32(),
            Err(DecodeError::Truncated {
                needed: 4,
                remaining: 2
            })
        );
        assert!(reader.finish().is_err());
    }
}
