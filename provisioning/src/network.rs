//! The network directory: what the authority keeps off the boxes, on an operator's laptop or
//! a USB stick in a safe.
//!
//! ```text
//! network.toml       name and network id
//! authority.pub      the authority's public key: copied into every bundle
//! authority.sealed   the authority's signing key and TLS CA key, sealed with the passphrase (0600)
//! tls-ca.pem         the network's TLS CA certificate: copied into every bundle
//! issued/NNNNNN.cert every certificate issued, by serial
//! revocations        the signed revocation list, armored
//! ```
//!
//! Only [`NetworkDir::unlock`] needs the passphrase; everything else reads public files.
//! `init` writes `network.toml` last: a directory without it is an interrupted `init`, to be
//! deleted and made again.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use zeroize::Zeroizing;

use crate::authority::{AuthorityKey, AuthorityPublicKey};
use crate::cert::Certificate;
use crate::codec::{Reader, Writer};
use crate::files::{self, IoError};
use crate::names::{NetworkId, NetworkName};
use crate::revocation::{RevocationError, RevocationList};
use crate::sealed::{self, KdfParams, Passphrase, RandomError, SealError};
use crate::tls::{TlsCa, TlsError};

pub const NETWORK_FILE: &str = "network.toml";
pub const AUTHORITY_PUB_FILE: &str = "authority.pub";
pub const AUTHORITY_SEALED_FILE: &str = "authority.sealed";
pub const TLS_CA_FILE: &str = "tls-ca.pem";
pub const ISSUED_DIR: &str = "issued";
pub const REVOCATIONS_FILE: &str = "revocations";

const SECRETS_MAGIC: &[u8; 4] = b"CLAK";
const SECRETS_VERSION: u8 = 1;

/// Why `culao network init` failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InitError {
    #[error("{} is not empty; a network is made only in a new or empty directory", path.display())]
    NotEmpty { path: PathBuf },
    #[error("cannot seal {}: {source}", path.display())]
    Seal { path: PathBuf, source: SealError },
    #[error("cannot make the TLS CA {}: {source}", path.display())]
    Tls { path: PathBuf, source: TlsError },
    #[error(transparent)]
    Random(#[from] RandomError),
    #[error("cannot write the network directory: {0}")]
    Io(#[from] IoError),
}

/// Why a network directory could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    #[error("cannot open the network directory: {0}")]
    Io(#[from] IoError),
    #[error("{} is malformed: {reason}", path.display())]
    Malformed { path: PathBuf, reason: String },
    #[error("{} is for network {found}, {NETWORK_FILE} says {expected}", path.display())]
    OtherNetwork {
        path: PathBuf,
        expected: NetworkId,
        found: NetworkId,
    },
}

/// Why the authority could not be unlocked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UnlockError {
    #[error("cannot read the authority's keys: {0}")]
    Io(#[from] IoError),
    #[error("{} is readable by others (mode {mode:o}); run `chmod 600` on it", path.display())]
    Permissions { path: PathBuf, mode: u32 },
    #[error("{}: {source}", path.display())]
    Sealed { path: PathBuf, source: SealError },
    #[error("{} holds malformed keys: {reason}", path.display())]
    Malformed { path: PathBuf, reason: String },
    #[error("{} holds keys of another authority than {AUTHORITY_PUB_FILE}", path.display())]
    KeyMismatch { path: PathBuf },
}

/// Why the issued certificates or the revocation list could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    #[error(transparent)]
    Io(#[from] IoError),
    #[error("{} is not a certificate of this network: {reason}", path.display())]
    Certificate { path: PathBuf, reason: String },
    #[error("{}: {source}", path.display())]
    Revocations {
        path: PathBuf,
        source: RevocationError,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NetworkFile {
    name: String,
    id: String,
    #[expect(dead_code, reason = "kept for the operator; nothing reads it yet")]
    created_unix_s: i64,
}

/// An opened network directory (public files only).
#[derive(Debug, Clone)]
pub struct NetworkDir {
    dir: PathBuf,
    name: NetworkName,
    public: AuthorityPublicKey,
}

impl NetworkDir {
    /// Makes a new network in `dir` (missing or empty): a fresh authority key and TLS CA,
    /// sealed under `passphrase`.
    pub fn init(
        dir: &Path,
        name: &NetworkName,
        passphrase: &Passphrase,
        now_unix_s: i64,
    ) -> Result<Self, InitError> {
        if !files::is_vacant(dir)? {
            return Err(InitError::NotEmpty {
                path: dir.to_owned(),
            });
        }

        let network = NetworkId::from_bytes(sealed::random()?);
        let seed = Zeroizing::new(sealed::random::<32>()?);
        let authority = AuthorityKey::from_secret_bytes(network, *seed);
        let tls_path = dir.join(TLS_CA_FILE);
        let tls_err = |source| InitError::Tls {
            path: tls_path.clone(),
            source,
        };
        let tls_ca = TlsCa::generate(network).map_err(tls_err)?;
        let tls_ca_pem = tls_ca.certificate_pem(now_unix_s).map_err(tls_err)?;

        let sealed_path = dir.join(AUTHORITY_SEALED_FILE);
        let secrets = encode_secrets(&authority, &tls_ca);
        let sealed_text =
            sealed::seal(&secrets, passphrase, KdfParams::STANDARD).map_err(|source| {
                InitError::Seal {
                    path: sealed_path.clone(),
                    source,
                }
            })?;

        files::create_private_dir(dir)?;
        files::create_private_dir(&dir.join(ISSUED_DIR))?;
        files::create_private(&sealed_path, sealed_text.as_bytes())?;
        let public_line = format!("{}\n", authority.public());
        files::create_public(&dir.join(AUTHORITY_PUB_FILE), public_line.as_bytes())?;
        files::create_public(&tls_path, tls_ca_pem.as_bytes())?;
        let revocations = RevocationList::new().to_armored();
        files::create_public(&dir.join(REVOCATIONS_FILE), revocations.as_bytes())?;
        // Hand-written: both values are slugs or hex, and the comment belongs on top.
        let toml_text = format!(
            "# A culao network. Keep this directory off the boxes: {AUTHORITY_SEALED_FILE} is \
             its authority.\nname = \"{name}\"\nid = \"{network}\"\ncreated_unix_s = {now_unix_s}\n"
        );
        let network_path = dir.join(NETWORK_FILE);
        files::create_public(&network_path, toml_text.as_bytes())?;
        files::sync_parent(&network_path)?;

        Ok(Self {
            dir: dir.to_owned(),
            name: name.clone(),
            public: authority.public(),
        })
    }

    /// Opens the network in `dir`, checking that its files agree on the network id.
    pub fn open(dir: &Path) -> Result<Self, OpenError> {
        let network_path = dir.join(NETWORK_FILE);
        let malformed = |path: &Path, reason: String| OpenError::Malformed {
            path: path.to_owned(),
            reason,
        };
        let text = files::read_text(&network_path)?;
        let file: NetworkFile = toml::from_str(&text)
            .map_err(|err| malformed(&network_path, err.message().to_owned()))?;
        let name = NetworkName::new(&file.name)
            .map_err(|err| malformed(&network_path, err.to_string()))?;
        let id: NetworkId = file
            .id
            .parse()
            .map_err(|err: crate::names::NameError| malformed(&network_path, err.to_string()))?;

        let pub_path = dir.join(AUTHORITY_PUB_FILE);
        let public: AuthorityPublicKey = files::read_text(&pub_path)?.trim().parse().map_err(
            |err: crate::authority::MalformedAuthority| malformed(&pub_path, err.to_string()),
        )?;
        if public.network() != id {
            return Err(OpenError::OtherNetwork {
                path: pub_path,
                expected: id,
                found: public.network(),
            });
        }
        Ok(Self {
            dir: dir.to_owned(),
            name,
            public,
        })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    pub fn name(&self) -> &NetworkName {
        &self.name
    }

    pub fn id(&self) -> NetworkId {
        self.public.network()
    }

    pub fn public_key(&self) -> &AuthorityPublicKey {
        &self.public
    }

    /// The TLS CA certificate, PEM, as it goes into every bundle.
    pub fn tls_ca_pem(&self) -> Result<String, IoError> {
        files::read_text(&self.dir.join(TLS_CA_FILE))
    }

    /// Opens `authority.sealed` with `passphrase`.
    pub fn unlock(&self, passphrase: &Passphrase) -> Result<Authority, UnlockError> {
        let path = self.dir.join(AUTHORITY_SEALED_FILE);
        if let Some(mode) = files::loose_mode(&path)? {
            return Err(UnlockError::Permissions { path, mode });
        }
        let text = files::read_text(&path)?;
        let secrets = match sealed::unseal(&text, passphrase) {
            Ok(secrets) => secrets,
            Err(source) => return Err(UnlockError::Sealed { path, source }),
        };
        let (key, tls_ca) = match decode_secrets(&secrets) {
            Ok(keys) => keys,
            Err(reason) => return Err(UnlockError::Malformed { path, reason }),
        };
        if key.public() != self.public {
            return Err(UnlockError::KeyMismatch { path });
        }
        Ok(Authority {
            network: self.clone(),
            key,
            tls_ca,
        })
    }

    /// Every certificate issued so far, in serial order.
    pub fn issued(&self) -> Result<Vec<Certificate>, RegistryError> {
        let dir = self.dir.join(ISSUED_DIR);
        let mut paths = Vec::new();
        for entry in fs::read_dir(&dir).map_err(IoError::at(&dir))? {
            let path = entry.map_err(IoError::at(&dir))?.path();
            if path.extension().is_some_and(|ext| ext == "cert") {
                paths.push(path);
            }
        }
        paths.sort();

        let mut certs = Vec::with_capacity(paths.len());
        for path in paths {
            let text = files::read_text(&path)?;
            let cert =
                Certificate::from_armored(&text).map_err(|err| RegistryError::Certificate {
                    path: path.clone(),
                    reason: err.to_string(),
                })?;
            if cert.body().network != self.id() {
                return Err(RegistryError::Certificate {
                    path,
                    reason: format!("it names network {}", cert.body().network),
                });
            }
            certs.push(cert);
        }
        certs.sort_by_key(|cert| cert.body().serial);
        Ok(certs)
    }

    /// Where the certificate with `serial` is recorded.
    pub(crate) fn issued_path(&self, serial: u64) -> PathBuf {
        self.dir.join(ISSUED_DIR).join(format!("{serial:06}.cert"))
    }

    /// The network's revocation list, every entry verified.
    pub fn revocations(&self) -> Result<RevocationList, RegistryError> {
        let path = self.dir.join(REVOCATIONS_FILE);
        let text = files::read_text(&path)?;
        RevocationList::from_armored(&text, &self.public)
            .map_err(|source| RegistryError::Revocations { path, source })
    }

    pub(crate) fn write_revocations(&self, list: &RevocationList) -> Result<(), RegistryError> {
        let path = self.dir.join(REVOCATIONS_FILE);
        files::replace(&path, list.to_armored().as_bytes())?;
        Ok(())
    }
}

/// The unlocked authority: what signs certificates, TLS certificates and revocations.
/// Its `Debug` shows no key.
pub struct Authority {
    network: NetworkDir,
    key: AuthorityKey,
    tls_ca: TlsCa,
}

impl Authority {
    pub fn network(&self) -> &NetworkDir {
        &self.network
    }

    pub fn key(&self) -> &AuthorityKey {
        &self.key
    }

    pub(crate) fn tls_ca(&self) -> &TlsCa {
        &self.tls_ca
    }
}

impl fmt::Debug for Authority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Authority({}, network {}, keys: <hidden>)",
            self.network.dir.display(),
            self.network.id().short()
        )
    }
}

/// `CLAK`, version, network id, ed25519 seed, then the TLS CA's PKCS#8 key (u32 length).
fn encode_secrets(key: &AuthorityKey, tls_ca: &TlsCa) -> Zeroizing<Vec<u8>> {
    let seed = Zeroizing::new(key.secret_bytes());
    let tls_key = tls_ca.key_der();
    let tls_len = u32::try_from(tls_key.len()).unwrap_or(u32::MAX);
    Zeroizing::new(
        Writer::new()
            .bytes(SECRETS_MAGIC)
            .u8(SECRETS_VERSION)
            .bytes(key.network().as_bytes())
            .bytes(seed.as_slice())
            .u32(tls_len)
            .bytes(&tls_key)
            .finish(),
    )
}

fn decode_secrets(bytes: &[u8]) -> Result<(AuthorityKey, TlsCa), String> {
    let mut reader = Reader::new(bytes);
    let shape = |err: crate::codec::DecodeError| err.to_string();
    if reader.take(SECRETS_MAGIC.len()).map_err(shape)? != SECRETS_MAGIC {
        return Err("not culao authority keys (bad magic)".to_owned());
    }
    let version = reader.u8().map_err(shape)?;
    if version != SECRETS_VERSION {
        return Err(format!("keys version {version} is unknown"));
    }
    let network = NetworkId::from_bytes(reader.array().map_err(shape)?);
    let seed = Zeroizing::new(reader.array::<32>().map_err(shape)?);
    let tls_len = reader.u32().map_err(shape)? as usize;
    let tls_key = reader.take(tls_len).map_err(shape)?;
    reader.finish().map_err(shape)?;

    let key = AuthorityKey::from_secret_bytes(network, *seed);
    let tls_ca = TlsCa::from_key_der(network, tls_key).map_err(|err| err.to_string())?;
    Ok((key, tls_ca))
}
