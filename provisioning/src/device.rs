//! Site devices (gate scanners, card readers, loudspeaker clusters) and their MQTT
//! credentials: what `culao provision device` makes.
//!
//! A device talks MQTT to its site box's embedded broker over TLS, presenting a client
//! certificate from the network's TLS CA whose organization is the device's name. The broker
//! holds such a client to the topics under `/tenants/{name}/`, so a device can neither write
//! nor read another device's topics nor the boxes' sync tree (under `/tenants/{network id}/`).
//!
//! A device also logs in with a password. The box keeps only its digest, as a line of the
//! broker's users file; deleting that line shuts the device out at its next connection,
//! certificate or not. The network directory records every name issued under `devices/`, so
//! no two devices of a network share a topic root.

use std::fmt;
use std::io;
use std::path::Path;
use std::str::FromStr;

use zeroize::Zeroizing;

use crate::files::{self, IoError};
use crate::names::Site;
use crate::network::Authority;
use crate::sealed::{self, RandomError};
use crate::tls::{DeviceSubject, TlsError};

/// Where the network directory records the certificate of every device issued.
pub const DEVICES_DIR: &str = "devices";
/// Longest device name. Network ids are 32 hex digits, so a device name can never be a
/// network's topic root.
pub const MAX_DEVICE_NAME_LEN: usize = 24;
/// Longest validity of a device certificate: five years.
pub const MAX_DEVICE_VALIDITY_DAYS: u32 = 5 * 365;

/// The files `write_to` makes in a device's directory.
pub const DEVICE_CERT_FILE: &str = "device.pem";
pub const DEVICE_KEY_FILE: &str = "device.key";
pub const DEVICE_PASSWORD_FILE: &str = "password";
pub const DEVICE_CA_FILE: &str = "ca.pem";

/// The prefix of a password digest in the broker's users file.
const DIGEST_PREFIX: &str = "blake3:";
const DIGEST_CONTEXT: &str = "culao 2026 mqtt device password v1";
const DAY_S: i64 = 86_400;

/// Why a device could not be issued or its name was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceError {
    #[error(
        "device name {0:?} must be 1 to {MAX_DEVICE_NAME_LEN} characters of a-z and 0-9, \
         starting with a letter (the broker holds the device to /tenants/<name>/)"
    )]
    Name(String),
    #[error("device class {0:?} is not gate, reader or speaker")]
    Class(String),
    #[error("validity of {days} days is outside 1 to {MAX_DEVICE_VALIDITY_DAYS}")]
    Validity { days: u32 },
    #[error("a device named {name} was already issued in this network ({}); pick another name", path.display())]
    Exists {
        name: String,
        path: std::path::PathBuf,
    },
    #[error("{} already has a line for {name}", path.display())]
    InUsersFile {
        name: String,
        path: std::path::PathBuf,
    },
    #[error("{} is not empty; device credentials are written only to a new or empty directory", path.display())]
    NotEmpty { path: std::path::PathBuf },
    #[error("TLS certificate: {0}")]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Random(#[from] RandomError),
    #[error(transparent)]
    Io(#[from] IoError),
}

/// A device's name: its MQTT topic root and the organization of its certificate.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeviceName(String);

impl DeviceName {
    pub fn new(value: &str) -> Result<Self, DeviceError> {
        let valid = !value.is_empty()
            && value.len() <= MAX_DEVICE_NAME_LEN
            && value.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
            && value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if !valid {
            return Err(DeviceError::Name(value.to_owned()));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The topics this device may use: everything under it.
    pub fn topic_root(&self) -> String {
        format!("/tenants/{}/", self.0)
    }
}

impl fmt::Display for DeviceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for DeviceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceName({})", self.0)
    }
}

impl FromStr for DeviceName {
    type Err = DeviceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// What kind of device it is; the topics it uses are documented per class in `docs/mqtt.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DeviceClass {
    /// A gate scanner at the port or an event.
    Gate,
    /// A card reader (payments, attendance, entry).
    Reader,
    /// A loudspeaker cluster of the radio network.
    Speaker,
}

impl DeviceClass {
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceClass::Gate => "gate",
            DeviceClass::Reader => "reader",
            DeviceClass::Speaker => "speaker",
        }
    }
}

impl fmt::Display for DeviceClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DeviceClass {
    type Err = DeviceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "gate" => Ok(DeviceClass::Gate),
            "reader" => Ok(DeviceClass::Reader),
            "speaker" => Ok(DeviceClass::Speaker),
            other => Err(DeviceError::Class(other.to_owned())),
        }
    }
}

/// What the operator asks for one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRequest {
    pub name: DeviceName,
    pub class: DeviceClass,
    pub site: Site,
    pub validity_days: u32,
    /// The operator's clock; the certificate is valid from an hour before it.
    pub now_unix_s: i64,
}

/// A device's credentials: its certificate and key, the CA it trusts, its password.
/// `Debug` shows neither the key nor the password.
pub struct DeviceCredentials {
    pub name: DeviceName,
    pub class: DeviceClass,
    pub site: Site,
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: Zeroizing<String>,
    pub password: Zeroizing<String>,
}

impl fmt::Debug for DeviceCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceCredentials")
            .field("name", &self.name)
            .field("class", &self.class)
            .field("site", &self.site)
            .field("key_pem", &"<hidden>")
            .field("password", &"<hidden>")
            .finish_non_exhaustive()
    }
}

impl DeviceCredentials {
    /// The line to add to the site box's broker users file: the name and the password's
    /// digest, never the password.
    pub fn users_line(&self) -> String {
        format!("{} {}", self.name, password_digest(&self.password))
    }

    /// Adds [`Self::users_line`] to a broker's users file (created 0600 if missing),
    /// refusing a second line for the same name.
    pub fn add_to_users_file(&self, path: &Path) -> Result<(), DeviceError> {
        let existing = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) if err.kind() == io::ErrorKind::NotFound => String::new(),
            Err(err) => return Err(IoError::at(path)(err).into()),
        };
        let name = self.name.as_str();
        if existing
            .lines()
            .any(|line| line.split_whitespace().next() == Some(name))
        {
            return Err(DeviceError::InUsersFile {
                name: name.to_owned(),
                path: path.to_owned(),
            });
        }
        let separator = if existing.is_empty() || existing.ends_with('\n') {
            ""
        } else {
            "\n"
        };
        let line = format!("{separator}{}\n", self.users_line());
        files::append_private(path, line.as_bytes())?;
        Ok(())
    }

    /// Writes the credentials into `dir` (missing or empty): the key and the password
    /// readable by their owner only.
    pub fn write_to(&self, dir: &Path) -> Result<(), DeviceError> {
        if !files::is_vacant(dir)? {
            return Err(DeviceError::NotEmpty {
                path: dir.to_owned(),
            });
        }
        files::create_private_dir(dir)?;
        files::create_private(&dir.join(DEVICE_KEY_FILE), self.key_pem.as_bytes())?;
        let password_line = Zeroizing::new(format!("{}\n", self.password.as_str()));
        files::create_private(&dir.join(DEVICE_PASSWORD_FILE), password_line.as_bytes())?;
        files::create_public(&dir.join(DEVICE_CERT_FILE), self.cert_pem.as_bytes())?;
        files::create_public(&dir.join(DEVICE_CA_FILE), self.ca_pem.as_bytes())?;
        files::sync_parent(&dir.join(DEVICE_KEY_FILE))?;
        Ok(())
    }
}

/// Issues one device: makes its certificate, key and password, then records its name
/// under the network's `devices/`.
pub fn issue_device(
    authority: &Authority,
    request: &DeviceRequest,
) -> Result<DeviceCredentials, DeviceError> {
    let days = request.validity_days;
    if days == 0 || days > MAX_DEVICE_VALIDITY_DAYS {
        return Err(DeviceError::Validity { days });
    }
    let not_before_unix_s = request.now_unix_s - crate::enroll::BACKDATE_S;
    let not_after_unix_s = request.now_unix_s + i64::from(days) * DAY_S;
    let tls = authority.tls_ca().issue_device(&DeviceSubject {
        name: &request.name,
        class: request.class,
        site: &request.site,
        not_before_unix_s,
        not_after_unix_s,
    })?;
    let password = Zeroizing::new(hex::encode(*Zeroizing::new(sealed::random::<24>()?)));
    let ca_pem = authority.network().tls_ca_pem()?;
    // Last: a name is claimed only once everything the device needs was made.
    record(authority, &request.name, &tls.cert_pem)?;
    Ok(DeviceCredentials {
        name: request.name.clone(),
        class: request.class,
        site: request.site.clone(),
        ca_pem,
        cert_pem: tls.cert_pem,
        key_pem: tls.key_pem,
        password,
    })
}

/// Claims `name` in the network directory; a name is issued once.
fn record(authority: &Authority, name: &DeviceName, cert_pem: &str) -> Result<(), DeviceError> {
    let dir = authority.network().path().join(DEVICES_DIR);
    files::create_private_dir(&dir)?;
    let path = dir.join(format!("{name}.pem"));
    match files::create_public(&path, cert_pem.as_bytes()) {
        Ok(()) => Ok(()),
        Err(err) if err.source.kind() == io::ErrorKind::AlreadyExists => Err(DeviceError::Exists {
            name: name.to_string(),
            path,
        }),
        Err(err) => Err(err.into()),
    }
}

/// The digest of a device password as the users file holds it: `blake3:` and 64 hex
/// digits. Passwords are 192 random bits, so a fast keyed hash is enough.
pub fn password_digest(password: &str) -> String {
    format!("{DIGEST_PREFIX}{}", digest_of(password).to_hex())
}

/// Whether `password` matches a users-file `digest` (compared in constant time).
/// `None` if `digest` is not a digest at all.
pub fn password_matches(digest: &str, password: &str) -> Option<bool> {
    let hex_part = digest.strip_prefix(DIGEST_PREFIX)?;
    let expected = blake3::Hash::from_hex(hex_part).ok()?;
    Some(digest_of(password) == expected)
}

fn digest_of(password: &str) -> blake3::Hash {
    blake3::Hasher::new_derive_key(DIGEST_CONTEXT)
        .update(password.as_bytes())
        .finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_names_are_topic_safe_and_never_a_network_id() {
        for good in ["gate1", "reader12", "speakerclusterb"] {
            assert_eq!(DeviceName::new(good).unwrap().as_str(), good);
        }
        for bad in [
            "",
            "Gate1",
            "gate-1",
            "1gate",
            "gate/1",
            "gate+",
            "bến",
            "a123456789012345678901234",
            "0123456789abcdef0123456789abcdef",
        ] {
            assert!(
                matches!(DeviceName::new(bad), Err(DeviceError::Name(_))),
                "{bad}"
            );
        }
        assert_eq!(
            DeviceName::new("gate1").unwrap().topic_root(),
            "/tenants/gate1/"
        );
    }

    #[test]
    fn classes_parse_and_name_themselves() {
        for class in [DeviceClass::Gate, DeviceClass::Reader, DeviceClass::Speaker] {
            assert_eq!(class.as_str().parse::<DeviceClass>().unwrap(), class);
        }
        assert!(matches!(
            "camera".parse::<DeviceClass>(),
            Err(DeviceError::Class(_))
        ));
    }

    #[test]
    fn a_password_matches_only_its_own_digest() {
        let digest = password_digest("correct horse");
        assert!(digest.starts_with("blake3:") && !digest.contains("horse"));
        assert_eq!(password_matches(&digest, "correct horse"), Some(true));
        assert_eq!(password_matches(&digest, "correct horsf"), Some(false));
        assert_eq!(password_matches("plain-password", "plain-password"), None);
        assert_eq!(password_matches("blake3:zz", "x"), None);
    }
}
