//! Enrollment and revocation: what `culao provision node` and `culao provision revoke` do
//! with an unlocked [`Authority`].
//!
//! Enrolling makes a new identity for the box, a certificate granting its role's scopes from
//! [`Policy::standard`], and a TLS certificate, and records the certificate under `issued/`
//! in the network directory before returning the [`Bundle`]. A box that is replaced (lost,
//! broken, stolen) is never re-certified: the old one is revoked and a new one enrolled for
//! the same site, with a new identity.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;

use crdt_model::{Identity, NodeId};

use crate::authority::IssueError;
use crate::bundle::Bundle;
use crate::cert::{Certificate, CertificateBody};
use crate::files::{self, IoError};
use crate::names::Site;
use crate::network::{Authority, RegistryError};
use crate::peers::{Peer, PeerSpec, Peers};
use crate::policy::{Policy, Role};
use crate::revocation::{Revocation, RevocationError};
use crate::sealed::{self, RandomError};
use crate::tls::{TlsError, TlsSubject};

/// Validity of a certificate when the operator does not say: one year.
pub const DEFAULT_VALIDITY_DAYS: u32 = 365;
/// Longest validity a certificate may be given: ten years.
pub const MAX_VALIDITY_DAYS: u32 = 3650;
/// A certificate is valid from an hour before it was made, so that a box whose clock runs a
/// little behind the operator's laptop accepts it at once.
pub const BACKDATE_S: i64 = 3600;

const DAY_S: i64 = 86_400;

/// What the operator asks for one box.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct EnrollRequest {
    pub role: Role,
    pub site: Site,
    pub validity_days: u32,
    /// Where the box will listen; their IPs also go into its TLS certificate. Empty: the
    /// box only dials out.
    pub listen: Vec<SocketAddr>,
    /// Boxes it dials, each already enrolled in this network and not revoked (several
    /// addresses of one node are merged). Empty: it waits for others to dial it.
    pub peers: Vec<PeerSpec>,
    /// The operator's clock; the certificate is valid from [`BACKDATE_S`] before it.
    pub now_unix_s: i64,
}

/// Why a box could not be enrolled.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EnrollError {
    #[error("validity of {days} days is outside 1 to {MAX_VALIDITY_DAYS}")]
    Validity { days: u32 },
    #[error("peer {node} was never enrolled in this network; enroll it first")]
    UnknownPeer { node: NodeId },
    #[error("peer {node} is revoked")]
    RevokedPeer { node: NodeId },
    #[error("certificate refused: {0}")]
    Issue(#[from] IssueError),
    #[error("TLS certificate: {0}")]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Random(#[from] RandomError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
}

impl From<IoError> for EnrollError {
    fn from(err: IoError) -> Self {
        EnrollError::Registry(err.into())
    }
}

/// Why a node could not be revoked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RevokeError {
    #[error("node {node} has no certificate in this network's issued/ directory")]
    NotIssued { node: NodeId },
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("the new revocation does not verify: {0}")]
    Revocation(#[from] RevocationError),
}

/// Enrolls one box: its identity, certificate (recorded under `issued/`), TLS certificate,
/// peers, and the current revocation list.
pub fn enroll(authority: &Authority, request: &EnrollRequest) -> Result<Bundle, EnrollError> {
    let days = request.validity_days;
    if days == 0 || days > MAX_VALIDITY_DAYS {
        return Err(EnrollError::Validity { days });
    }
    let network = authority.network();
    let issued = network.issued()?;
    let revocations = network.revocations()?;
    let peers = resolve_peers(&issued, &request.peers, |node| revocations.is_revoked(node))?;

    let identity = Identity::from_secret_bytes(*zeroize::Zeroizing::new(sealed::random::<32>()?));
    let access = Policy::standard().access(request.role);
    let mut body = CertificateBody {
        network: network.id(),
        node: identity.node_id(),
        role: request.role,
        site: request.site.clone(),
        read: access.read,
        write: access.write,
        carry: access.carry,
        not_before_unix_s: request.now_unix_s - BACKDATE_S,
        not_after_unix_s: request.now_unix_s + i64::from(days) * DAY_S,
        serial: issued.last().map_or(1, |cert| cert.body().serial + 1),
    };
    let certificate = record(authority, &mut body)?;

    let addresses: Vec<_> = request.listen.iter().map(SocketAddr::ip).collect();
    let tls = authority.tls_ca().issue(&TlsSubject {
        node: body.node,
        role: body.role,
        site: &body.site,
        addresses: &addresses,
        serial: body.serial,
        not_before_unix_s: body.not_before_unix_s,
        not_after_unix_s: body.not_after_unix_s,
    })?;

    Ok(Bundle {
        identity,
        certificate,
        authority: *network.public_key(),
        peers: Peers {
            listen: request.listen.clone(),
            peers,
        },
        tls_ca_pem: network.tls_ca_pem()?,
        tls,
        revocations,
    })
}

/// Signs `body` and records it as `issued/<serial>.cert`; if another enroll took that serial
/// meanwhile, takes the next one.
fn record(authority: &Authority, body: &mut CertificateBody) -> Result<Certificate, EnrollError> {
    loop {
        let certificate = authority.key().issue(body.clone())?;
        let path = authority.network().issued_path(body.serial);
        match files::create_public(&path, certificate.to_armored().as_bytes()) {
            Ok(()) => return Ok(certificate),
            Err(err) if err.source.kind() == io::ErrorKind::AlreadyExists => body.serial += 1,
            Err(err) => return Err(err.into()),
        }
    }
}

/// The peers named on the command line, with the role and site they were issued.
fn resolve_peers(
    issued: &[Certificate],
    specs: &[PeerSpec],
    is_revoked: impl Fn(&NodeId) -> bool,
) -> Result<Vec<Peer>, EnrollError> {
    let latest: BTreeMap<NodeId, &CertificateBody> = issued
        .iter()
        .map(|cert| (cert.body().node, cert.body()))
        .collect();
    let mut peers: Vec<Peer> = Vec::new();
    for spec in specs {
        let Some(body) = latest.get(&spec.node) else {
            return Err(EnrollError::UnknownPeer { node: spec.node });
        };
        if is_revoked(&spec.node) {
            return Err(EnrollError::RevokedPeer { node: spec.node });
        }
        match peers.iter_mut().find(|peer| peer.node == spec.node) {
            Some(peer) if peer.addrs.contains(&spec.addr) => {}
            Some(peer) => peer.addrs.push(spec.addr),
            None => peers.push(Peer {
                node: spec.node,
                role: body.role,
                site: body.site.clone(),
                addrs: vec![spec.addr],
            }),
        }
    }
    Ok(peers)
}

/// Revokes `node` at `now_unix_s`: signs a revocation of its latest certificate and adds it
/// to the network's `revocations` file, which is then handed to the boxes.
pub fn revoke(
    authority: &Authority,
    node: &NodeId,
    now_unix_s: i64,
) -> Result<Revocation, RevokeError> {
    let network = authority.network();
    let serial = network
        .issued()?
        .iter()
        .filter(|cert| cert.body().node == *node)
        .map(|cert| cert.body().serial)
        .max()
        .ok_or(RevokeError::NotIssued { node: *node })?;

    let revocation = authority.key().revoke(*node, serial, now_unix_s);
    let mut list = network.revocations()?;
    list.insert(network.public_key(), revocation)?;
    network.write_revocations(&list)?;
    Ok(list.revocation_of(node).copied().unwrap_or(revocation))
}
