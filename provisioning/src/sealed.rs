//! A secret sealed with a passphrase, for the authority's keys in the network directory.
//!
//! # Format, version 1
//!
//! Hex armored (`-----BEGIN CULAO SEALED SECRET-----`) around these bytes:
//!
//! | bytes | field |
//! | --- | --- |
//! | 4 | magic `CLSS` |
//! | 1 | version, `1` |
//! | 1 | key derivation, `1` = argon2id (version 0x13) |
//! | 4 | argon2 memory, KiB |
//! | 4 | argon2 iterations |
//! | 4 | argon2 lanes |
//! | 16 | salt (random) |
//! | 24 | nonce (random) |
//! | 4 | length of the ciphertext |
//! | n | XChaCha20-Poly1305 ciphertext and tag; every byte before it is associated data |
//! | 32 | BLAKE3 of every byte before it |
//!
//! The checksum holds no secret; it tells a damaged file ([`SealError::Malformed`]) from a wrong
//! passphrase ([`SealError::WrongPassphrase`]), which the cipher alone cannot. Someone who can
//! write the file can still fix up the checksum after tampering: that reads as a wrong
//! passphrase, and nothing sealed leaks either way.

use std::fmt;
use std::path::Path;

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead as _, Payload};
use chacha20poly1305::{Key, KeyInit as _, XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

use crate::codec::{self, DecodeError, Reader, Writer};
use crate::files::{self, IoError};

const MAGIC: &[u8; 4] = b"CLSS";
pub const SEALED_VERSION: u8 = 1;
const KDF_ARGON2ID: u8 = 1;
const ARMOR_LABEL: &str = "SEALED SECRET";
const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const CHECKSUM_LEN: usize = 32;

/// Shortest passphrase [`seal`] accepts, in bytes.
pub const MIN_PASSPHRASE_LEN: usize = 8;

/// Why a secret could not be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    #[error("wrong passphrase")]
    WrongPassphrase,
    #[error("not a usable sealed secret: {reason}")]
    Malformed { reason: String },
    #[error("sealed secret version {version} is unknown (this build reads {SEALED_VERSION})")]
    UnknownVersion { version: u8 },
    #[error("passphrase is shorter than {MIN_PASSPHRASE_LEN} bytes")]
    WeakPassphrase,
    #[error("key derivation parameters refused: {reason}")]
    Kdf { reason: String },
    #[error(transparent)]
    Random(#[from] RandomError),
}

/// The operating system's random source failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the operating system gave no randomness: {reason}")]
pub struct RandomError {
    pub reason: String,
}

impl From<DecodeError> for SealError {
    fn from(err: DecodeError) -> Self {
        SealError::Malformed {
            reason: err.to_string(),
        }
    }
}

/// A passphrase. Its memory is wiped on drop and its `Debug` never shows it.
#[derive(Clone)]
pub struct Passphrase(Zeroizing<String>);

impl Passphrase {
    pub fn new(passphrase: String) -> Self {
        Self(Zeroizing::new(passphrase))
    }

    /// The first line of `path` (what `--passphrase-file` names), without its line ending.
    pub fn from_file(path: &Path) -> Result<Self, IoError> {
        let text = Zeroizing::new(files::read_text(path)?);
        let line = text.lines().next().unwrap_or_default();
        Ok(Self::new(line.to_owned()))
    }

    fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(<hidden>)")
    }
}

/// The cost of deriving the key from the passphrase; stored in the file, so it can grow later.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct KdfParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub lanes: u32,
}

impl KdfParams {
    /// argon2id with 19 MiB and 2 passes: the smallest setting OWASP recommends. The file sits
    /// on an operator's laptop, not on a server an attacker can query, and unlocking has to be
    /// quick on that laptop and in debug-build tests.
    pub const STANDARD: KdfParams = KdfParams {
        memory_kib: 19 * 1024,
        iterations: 2,
        lanes: 1,
    };

    /// Largest costs a file may ask for, so a crafted file cannot make us allocate gigabytes.
    const MAX: KdfParams = KdfParams {
        memory_kib: 1024 * 1024,
        iterations: 64,
        lanes: 16,
    };

    fn derive(
        &self,
        passphrase: &Passphrase,
        salt: &[u8],
    ) -> Result<Zeroizing<[u8; 32]>, SealError> {
        let kdf_err = |err: argon2::Error| SealError::Kdf {
            reason: err.to_string(),
        };
        if self.memory_kib > Self::MAX.memory_kib
            || self.iterations > Self::MAX.iterations
            || self.lanes > Self::MAX.lanes
        {
            return Err(SealError::Kdf {
                reason: format!("{self:?} exceeds {:?}", Self::MAX),
            });
        }
        let params =
            Params::new(self.memory_kib, self.iterations, self.lanes, Some(32)).map_err(kdf_err)?;
        let mut key = Zeroizing::new([0u8; 32]);
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(passphrase.as_bytes(), salt, key.as_mut_slice())
            .map_err(kdf_err)?;
        Ok(key)
    }
}

/// `N` bytes from the operating system's random source.
pub(crate) fn random<const N: usize>() -> Result<[u8; N], RandomError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|err| RandomError {
        reason: err.to_string(),
    })?;
    Ok(bytes)
}

fn cipher(key: &[u8; 32]) -> XChaCha20Poly1305 {
    XChaCha20Poly1305::new(&Key::from(*key))
}

/// Seals `secret` under `passphrase`; the result is the armored text of a sealed file.
pub fn seal(
    secret: &[u8],
    passphrase: &Passphrase,
    params: KdfParams,
) -> Result<String, SealError> {
    if passphrase.as_bytes().len() < MIN_PASSPHRASE_LEN {
        return Err(SealError::WeakPassphrase);
    }
    let salt = random::<SALT_LEN>()?;
    let nonce = random::<NONCE_LEN>()?;
    let key = params.derive(passphrase, &salt)?;

    let sealed_len = u32::try_from(secret.len() + TAG_LEN).map_err(|_| SealError::Malformed {
        reason: "secret too long".to_owned(),
    })?;
    let mut writer = Writer::new();
    writer
        .bytes(MAGIC)
        .u8(SEALED_VERSION)
        .u8(KDF_ARGON2ID)
        .u32(params.memory_kib)
        .u32(params.iterations)
        .u32(params.lanes)
        .bytes(&salt)
        .bytes(&nonce)
        .u32(sealed_len);
    let header = writer.finish();
    let payload = Payload {
        msg: secret,
        aad: &header,
    };
    let ciphertext = cipher(&key)
        .encrypt(&XNonce::from(nonce), payload)
        .map_err(|_| SealError::Malformed {
            reason: "secret too long".to_owned(),
        })?;

    let mut bytes = header;
    bytes.extend_from_slice(&ciphertext);
    let checksum = blake3::hash(&bytes);
    bytes.extend_from_slice(checksum.as_bytes());
    Ok(codec::armor(ARMOR_LABEL, &bytes))
}

/// Opens the armored sealed `text` with `passphrase`.
pub fn unseal(text: &str, passphrase: &Passphrase) -> Result<Zeroizing<Vec<u8>>, SealError> {
    let bytes = codec::unarmor(ARMOR_LABEL, text)?;
    let Some(body_len) = bytes.len().checked_sub(CHECKSUM_LEN) else {
        return Err(DecodeError::Truncated {
            needed: CHECKSUM_LEN,
            remaining: bytes.len(),
        }
        .into());
    };
    let (body, checksum) = bytes.split_at(body_len);
    if blake3::hash(body).as_bytes() != checksum {
        return Err(SealError::Malformed {
            reason: "checksum does not match: the file is damaged".to_owned(),
        });
    }

    let mut reader = Reader::new(body);
    if reader.take(MAGIC.len())? != MAGIC {
        return Err(SealError::Malformed {
            reason: "not a culao sealed secret (bad magic)".to_owned(),
        });
    }
    let version = reader.u8()?;
    if version != SEALED_VERSION {
        return Err(SealError::UnknownVersion { version });
    }
    let kdf = reader.u8()?;
    if kdf != KDF_ARGON2ID {
        return Err(SealError::Malformed {
            reason: format!("unknown key derivation {kdf}"),
        });
    }
    let params = KdfParams {
        memory_kib: reader.u32()?,
        iterations: reader.u32()?,
        lanes: reader.u32()?,
    };
    let salt = reader.array::<SALT_LEN>()?;
    let nonce = reader.array::<NONCE_LEN>()?;
    let sealed_len = reader.u32()? as usize;
    let header = &body[..reader.position()];
    let ciphertext = reader.take(sealed_len)?;
    reader.finish()?;
    if sealed_len < TAG_LEN {
        return Err(SealError::Malformed {
            reason: format!("ciphertext of {sealed_len} bytes is shorter than its tag"),
        });
    }

    let key = params.derive(passphrase, &salt)?;
    let payload = Payload {
        msg: ciphertext,
        aad: header,
    };
    cipher(&key)
        .decrypt(&XNonce::from(nonce), payload)
        .map(Zeroizing::new)
        .map_err(|_| SealError::WrongPassphrase)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pass(s: &str) -> Passphrase {
        Passphrase::new(s.to_owned())
    }

    #[test]
    fn a_secret_opens_only_with_its_passphrase() {
        let text = seal(
            b"the authority key",
            &pass("correct horse"),
            KdfParams::STANDARD,
        )
        .unwrap();
        assert!(text.starts_with("-----BEGIN CULAO SEALED SECRET-----\n"));
        assert!(!text.contains(&hex::encode(b"the authority key")));
        assert_eq!(
            unseal(&text, &pass("correct horse")).unwrap().as_slice(),
            b"the authority key"
        );
        assert_eq!(
            unseal(&text, &pass("correct horsf")),
            Err(SealError::WrongPassphrase)
        );
    }

    #[test]
    fn two_seals_of_one_secret_differ() {
        let a = seal(b"k", &pass("12345678"), KdfParams::STANDARD).unwrap();
        let b = seal(b"k", &pass("12345678"), KdfParams::STANDARD).unwrap();
        assert_ne!(a, b, "salt and nonce are fresh each time");
    }

    #[test]
    fn damage_is_told_apart_from_a_wrong_passphrase() {
        let passphrase = pass("correct horse");
        let text = seal(b"secret", &passphrase, KdfParams::STANDARD).unwrap();
        let bytes = codec::unarmor(ARMOR_LABEL, &text).unwrap();

        for i in [0, 5, 7, 30, 60, bytes.len() - 20, bytes.len() - 1] {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x40;
            let damaged = codec::armor(ARMOR_LABEL, &damaged);
            assert!(
                matches!(
                    unseal(&damaged, &passphrase),
                    Err(SealError::Malformed { .. })
                ),
                "byte {i}"
            );
        }
        for len in [0, 10, bytes.len() - 1] {
            let cut = codec::armor(ARMOR_LABEL, &bytes[..len]);
            assert!(
                matches!(unseal(&cut, &passphrase), Err(SealError::Malformed { .. })),
                "cut at {len}"
            );
        }
        let lines: Vec<&str> = text.lines().collect();
        let missing_end = lines[..lines.len() - 1].join("\n");
        assert!(matches!(
            unseal(&missing_end, &passphrase),
            Err(SealError::Malformed { .. })
        ));
    }

    #[test]
    fn a_short_passphrase_is_refused_when_sealing() {
        assert_eq!(
            seal(b"s", &pass("1234567"), KdfParams::STANDARD),
            Err(SealError::WeakPassphrase)
        );
    }

    #[test]
    fn a_file_asking_for_huge_costs_is_refused() {
        let huge = KdfParams {
            memory_kib: u32::MAX,
            ..KdfParams::STANDARD
        };
        assert!(matches!(
            seal(b"s", &pass("12345678"), huge),
            Err(SealError::Kdf { .. })
        ));
    }

    #[test]
    fn a_passphrase_file_gives_its_first_line_and_debug_hides_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pass");
        std::fs::write(&path, "hunter22 and more\r\n").unwrap();
        let passphrase = Passphrase::from_file(&path).unwrap();
        assert_eq!(passphrase.as_bytes(), b"hunter22 and more");
        assert_eq!(format!("{passphrase:?}"), "Passphrase(<hidden>)");
        let err = Passphrase::from_file(&dir.path().join("none")).unwrap_err();
        assert!(err.to_string().contains("none"), "{err}");
    }
}
