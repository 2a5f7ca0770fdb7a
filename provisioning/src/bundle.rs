//! The enrollment bundle: everything one box needs to join its network, as a directory.
//!
//! ```text
//! identity.key   the box's ed25519 secret, `culao-identity-v1 <64 hex>` (0600)
//! node.cert      its certificate, armored, signed by the authority
//! authority.pub  the authority's public key, to verify peers' certificates
//! peers.toml     where it listens and whom it dials (see [`crate::peers`])
//! tls/ca.pem     the network's TLS CA certificate
//! tls/node.pem   the box's TLS certificate (server and client), signed by that CA
//! tls/node.key   its TLS key, PKCS#8 PEM (0600)
//! revocations    the revocation list when the bundle was made, armored
//! ```
//!
//! [`Bundle::load`] reads it all back and refuses a bundle whose files do not agree: a
//! certificate that does not verify against `authority.pub`, or that names another node than
//! `identity.key`, or a key file others may read. Each error names the file.

use std::fmt;
use std::path::{Path, PathBuf};

use crdt_model::{Identity, NodeId};
use zeroize::Zeroizing;

use crate::authority::AuthorityPublicKey;
use crate::cert::{CertError, Certificate, VerifiedPeer};
use crate::files::{self, IoError};
use crate::peers::Peers;
use crate::revocation::{RevocationError, RevocationList};
use crate::tls::TlsCertificate;

pub const IDENTITY_FILE: &str = "identity.key";
pub const NODE_CERT_FILE: &str = "node.cert";
pub const AUTHORITY_PUB_FILE: &str = "authority.pub";
pub const PEERS_FILE: &str = "peers.toml";
pub const TLS_DIR: &str = "tls";
pub const TLS_CA_FILE: &str = "tls/ca.pem";
pub const TLS_CERT_FILE: &str = "tls/node.pem";
pub const TLS_KEY_FILE: &str = "tls/node.key";
pub const REVOCATIONS_FILE: &str = "revocations";

/// The identity file's header, shared with the node's own reader (`node/src/identity.rs`).
const IDENTITY_HEADER: &str = "culao-identity-v1";

/// Why a bundle could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    #[error("{} is not empty; a bundle is written only to a new or empty directory", path.display())]
    NotEmpty { path: PathBuf },
    #[error("cannot write the bundle: {0}")]
    Io(#[from] IoError),
}

/// Why a bundle was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    #[error("cannot read the bundle: {0}")]
    Io(#[from] IoError),
    #[error("{} is readable by others (mode {mode:o}); run `chmod 600` on it", path.display())]
    Permissions { path: PathBuf, mode: u32 },
    #[error("{} is malformed: {reason}", path.display())]
    Malformed { path: PathBuf, reason: String },
    #[error("{}: {source}", path.display())]
    Certificate { path: PathBuf, source: CertError },
    #[error("{}: {source}", path.display())]
    Revocations {
        path: PathBuf,
        source: RevocationError,
    },
    #[error("{} certifies node {certified}, but {IDENTITY_FILE} is node {identity}", path.display())]
    NodeMismatch {
        path: PathBuf,
        identity: NodeId,
        certified: NodeId,
    },
}

/// One box's enrollment, in memory. Its `Debug` shows no secret.
#[derive(Clone)]
pub struct Bundle {
    pub identity: Identity,
    pub certificate: Certificate,
    pub authority: AuthorityPublicKey,
    pub peers: Peers,
    pub tls_ca_pem: String,
    pub tls: TlsCertificate,
    pub revocations: RevocationList,
}

/// A bundle read from disk whose files agree, with the box's own certificate verified.
#[derive(Debug, Clone)]
pub struct LoadedBundle {
    pub dir: PathBuf,
    pub bundle: Bundle,
    /// What the box's own certificate grants it, verified at load time.
    pub own: VerifiedPeer,
}

impl fmt::Debug for Bundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let body = self.certificate.body();
        f.debug_struct("Bundle")
            .field("identity", &self.identity)
            .field("role", &body.role)
            .field("site", &body.site)
            .field("serial", &body.serial)
            .field("authority", &self.authority)
            .field("peers", &self.peers)
            .field("tls", &self.tls)
            .field("revocations", &self.revocations.len())
            .finish_non_exhaustive()
    }
}

impl Bundle {
    pub fn node_id(&self) -> NodeId {
        self.identity.node_id()
    }

    /// Writes the bundle into `dir`, which must be missing or empty; the directory and the
    /// key files are made readable by their owner only.
    pub fn write_to(&self, dir: &Path) -> Result<(), WriteError> {
        if !files::is_vacant(dir)? {
            return Err(WriteError::NotEmpty {
                path: dir.to_owned(),
            });
        }
        files::create_private_dir(dir)?;
        files::create_private_dir(&dir.join(TLS_DIR))?;

        let secret = Zeroizing::new(self.identity.secret_bytes());
        let identity_line = Zeroizing::new(format!("{IDENTITY_HEADER} {}\n", hex::encode(*secret)));
        files::create_private(&dir.join(IDENTITY_FILE), identity_line.as_bytes())?;
        files::create_private(&dir.join(TLS_KEY_FILE), self.tls.key_pem.as_bytes())?;

        let public = [
            (NODE_CERT_FILE, self.certificate.to_armored()),
            (AUTHORITY_PUB_FILE, format!("{}\n", self.authority)),
            (PEERS_FILE, self.peers.to_toml()),
            (TLS_CA_FILE, self.tls_ca_pem.clone()),
            (TLS_CERT_FILE, self.tls.cert_pem.clone()),
            (REVOCATIONS_FILE, self.revocations.to_armored()),
        ];
        for (name, contents) in public {
            files::create_public(&dir.join(name), contents.as_bytes())?;
        }
        files::sync_parent(&dir.join(IDENTITY_FILE))?;
        Ok(())
    }

    /// Reads the bundle in `dir` and checks that its files agree at `now_unix_s`.
    pub fn load(dir: &Path, now_unix_s: i64) -> Result<LoadedBundle, BundleError> {
        let path = |name: &str| dir.join(name);
        let malformed = |name: &str, reason: String| BundleError::Malformed {
            path: dir.join(name),
            reason,
        };

        let identity = read_identity(&path(IDENTITY_FILE))?;
        let tls_key = read_private(&path(TLS_KEY_FILE))?;
        if !tls_key.contains("-----BEGIN PRIVATE KEY-----") {
            return Err(malformed(
                TLS_KEY_FILE,
                "not a PKCS#8 PEM private key".to_owned(),
            ));
        }

        let authority: AuthorityPublicKey = files::read_text(&path(AUTHORITY_PUB_FILE))?
            .trim()
            .parse()
            .map_err(|err: crate::authority::MalformedAuthority| {
                malformed(AUTHORITY_PUB_FILE, err.to_string())
            })?;
        let revocations =
            RevocationList::from_armored(&files::read_text(&path(REVOCATIONS_FILE))?, &authority)
                .map_err(|source| BundleError::Revocations {
                path: path(REVOCATIONS_FILE),
                source,
            })?;

        let cert_path = path(NODE_CERT_FILE);
        let cert_err = |source| BundleError::Certificate {
            path: cert_path.clone(),
            source,
        };
        let certificate =
            Certificate::from_armored(&files::read_text(&cert_path)?).map_err(cert_err)?;
        if certificate.body().node != identity.node_id() {
            return Err(BundleError::NodeMismatch {
                path: cert_path,
                identity: identity.node_id(),
                certified: certificate.body().node,
            });
        }
        let own = certificate
            .verify(&authority, now_unix_s, &revocations)
            .map_err(cert_err)?;

        let peers = Peers::from_toml(&files::read_text(&path(PEERS_FILE))?)
            .map_err(|err| malformed(PEERS_FILE, err.reason))?;
        let tls_ca_pem = read_pem_certificate(&path(TLS_CA_FILE))?;
        let cert_pem = read_pem_certificate(&path(TLS_CERT_FILE))?;

        let bundle = Bundle {
            identity,
            certificate,
            authority,
            peers,
            tls_ca_pem,
            tls: TlsCertificate {
                cert_pem,
                key_pem: tls_key,
            },
            revocations,
        };
        Ok(LoadedBundle {
            dir: dir.to_owned(),
            bundle,
            own,
        })
    }
}

/// A secret file's text, refused if others may read it.
fn read_private(path: &Path) -> Result<Zeroizing<String>, BundleError> {
    if let Some(mode) = files::loose_mode(path)? {
        return Err(BundleError::Permissions {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(Zeroizing::new(files::read_text(path)?))
}

fn read_identity(path: &Path) -> Result<Identity, BundleError> {
    let text = read_private(path)?;
    let malformed = || BundleError::Malformed {
        path: path.to_owned(),
        reason: format!("expected one line `{IDENTITY_HEADER} <64 lowercase hex digits>`"),
    };
    let hex_secret = text
        .trim_end()
        .strip_prefix(IDENTITY_HEADER)
        .and_then(|rest| rest.strip_prefix(' '))
        .ok_or_else(malformed)?;
    if hex_secret.len() != 64
        || hex_secret
            .bytes()
            .any(|b| !matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err(malformed());
    }
    let mut secret = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(hex_secret, secret.as_mut_slice()).map_err(|_| malformed())?;
    Ok(Identity::from_secret_bytes(*secret))
}

fn read_pem_certificate(path: &Path) -> Result<String, BundleError> {
    let text = files::read_text(path)?;
    let begin = "-----BEGIN CERTIFICATE-----";
    let end = "-----END CERTIFICATE-----";
    if !text.trim_start().starts_with(begin) || !text.trim_end().ends_with(end) {
        return Err(BundleError::Malformed {
            path: path.to_owned(),
            reason: "not a PEM certificate".to_owned(),
        });
    }
    Ok(text)
}
