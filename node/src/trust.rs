//! Who this box trusts, and the preamble every connection opens with.
//!
//! A box runs either **enrolled** (from a bundle: its certificate, the network authority's
//! public key, the revocations it knows) or **open** (development only: no network, every
//! peer and every scope admitted; the box says so in its log at start).
//!
//! # The preamble
//!
//! Before the sync protocol's `Hello`, each end of a connection sends one frame, so that
//! nothing of the sync protocol runs before both ends are authenticated:
//!
//! | bytes | field |
//! | --- | --- |
//! | 4 | magic `CLPA` |
//! | 1 | version, `1` |
//! | 4 | length of the sender's own certificate; `0` for an open box |
//! | n | the certificate (`docs/provisioning.md`) |
//! | 2 | count of other certificates the sender knows |
//! | 4 + n | each: length, certificate |
//! | 4 | length of the revocation list; `0` for none |
//! | n | the revocation list |
//!
//! The iroh (QUIC/TLS) handshake has already proven that the peer holds the key of its node
//! id; the preamble proves what the authority says that node is. The receiver verifies the
//! peer's certificate (network, signature, validity, not revoked, node id equal to the
//! connection's), merges the revocations (each signed by the authority) and keeps the other
//! certificates that verify: they are how it judges entries the peer relays from origins it
//! has never met. Certificates and revocations spread this way, like records: when a box
//! learns something new it restarts its other sessions, whose preambles carry it on.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use crdt_model::session::{FeedGate, ScopeFilter};
use crdt_model::{NodeId, Scope};
use provisioning::authority::AuthorityPublicKey;
use provisioning::cert::{CertError, Certificate, VerifiedPeer, shared_scopes};
use provisioning::revocation::{RevocationError, RevocationList};

const MAGIC: &[u8; 4] = b"CLPA";
const VERSION: u8 = 1;
/// More certificates than an island has boxes by far; bounds what a peer can make us hold.
const MAX_CERTIFICATES: usize = 4096;

/// Why a peer's preamble was refused. The connection is closed and nothing is synced.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdmitError {
    #[error("malformed preamble: {0}")]
    Malformed(String),
    #[error(
        "peer presented no certificate; this box belongs to a network and syncs only with its members"
    )]
    NoCertificate,
    #[error("peer presented a certificate, but this box runs open (development) without a network")]
    OpenBoxMeetsNetwork,
    #[error("peer's certificate refused: {0}")]
    Certificate(#[from] CertError),
    #[error("peer sent a revocation that does not verify: {0}")]
    Revocation(#[from] RevocationError),
}

/// What admitting a peer decided.
#[derive(Debug)]
pub struct Admitted {
    /// The peer's verified certificate; `None` between open boxes.
    pub peer: Option<VerifiedPeer>,
    /// The scopes the session exchanges.
    pub filter: ScopeFilter,
    /// Nodes newly known to be revoked: their sessions end now.
    pub newly_revoked: Vec<NodeId>,
    /// True if the preamble taught this box anything (a certificate or a revocation).
    pub learned: bool,
}

/// The enrolled box's trust: shared by the core thread, which changes it, and every
/// session's gate, which reads it.
#[derive(Debug)]
pub struct Trust {
    authority: AuthorityPublicKey,
    me: VerifiedPeer,
    own: Certificate,
    /// Every certificate that verified when it arrived, by node, this box's own included.
    known: BTreeMap<NodeId, Certificate>,
    revocations: RevocationList,
}

impl Trust {
    /// Trust from a bundle's parts; `own` must verify now.
    pub fn new(
        authority: AuthorityPublicKey,
        own: Certificate,
        revocations: RevocationList,
        now_unix_s: i64,
    ) -> Result<Self, CertError> {
        let me = own.verify(&authority, now_unix_s, &revocations)?;
        let mut known = BTreeMap::new();
        known.insert(me.node, own.clone());
        Ok(Self {
            authority,
            me,
            own,
            known,
            revocations,
        })
    }

    pub fn me(&self) -> &VerifiedPeer {
        &self.me
    }

    /// This box's own certificate, as it presents it.
    pub fn own(&self) -> &Certificate {
        &self.own
    }

    pub fn authority(&self) -> &AuthorityPublicKey {
        &self.authority
    }

    pub fn revocations(&self) -> &RevocationList {
        &self.revocations
    }

    pub fn known(&self) -> impl Iterator<Item = &Certificate> {
        self.known.values()
    }

    /// The role and site a known node is certified for, for the audit record.
    pub fn describe(&self, node: &NodeId) -> Option<(String, String)> {
        self.known.get(node).map(|cert| {
            let body = cert.body();
            (body.role.to_string(), body.site.as_str().to_owned())
        })
    }

    /// Adds a certificate that verifies now; true if it was new.
    fn learn_certificate(&mut self, cert: Certificate, now_unix_s: i64) -> bool {
        let node = cert.body().node;
        let newer = self
            .known
            .get(&node)
            .is_none_or(|held| held.body().serial < cert.body().serial);
        if !newer
            || cert
                .verify(&self.authority, now_unix_s, &self.revocations)
                .is_err()
        {
            return false;
        }
        self.known.insert(node, cert);
        true
    }

    /// Merges verified revocations; returns the nodes newly revoked.
    pub fn learn_revocations(
        &mut self,
        list: &RevocationList,
    ) -> Result<Vec<NodeId>, RevocationError> {
        let mut newly: Vec<NodeId> = list
            .iter()
            .map(|r| r.body().node)
            .filter(|n| !self.revocations.is_revoked(n))
            .collect();
        self.revocations.merge(&self.authority, list)?;
        newly.retain(|n| self.revocations.is_revoked(n));
        newly.sort();
        newly.dedup();
        Ok(newly)
    }

    /// Decides on a peer's preamble (see the module doc).
    pub fn admit(
        &mut self,
        peer: &NodeId,
        preamble: Preamble,
        now_unix_s: i64,
    ) -> Result<Admitted, AdmitError> {
        let Some(theirs) = preamble.own else {
            return Err(AdmitError::NoCertificate);
        };
        // Revocations first: a peer cannot be admitted on a certificate its own preamble
        // (or anyone's) has revoked.
        let newly_revoked = match &preamble.revocations {
            Some(list) => self.learn_revocations(list)?,
            None => Vec::new(),
        };
        let verified =
            theirs.verify_presented(peer, &self.authority, now_unix_s, &self.revocations)?;
        let mut learned = !newly_revoked.is_empty();
        learned |= self.learn_certificate(theirs, now_unix_s);
        for cert in preamble.others {
            learned |= self.learn_certificate(cert, now_unix_s);
        }
        let filter = ScopeFilter::Only(shared_scopes(&self.me, &verified));
        Ok(Admitted {
            peer: Some(verified),
            filter,
            newly_revoked,
            learned,
        })
    }

    /// This box's preamble: its certificate, the others it knows, its revocations.
    pub fn preamble(&self) -> Preamble {
        Preamble {
            own: Some(self.own.clone()),
            others: self
                .known
                .iter()
                .filter(|(node, _)| **node != self.me.node)
                .map(|(_, cert)| cert.clone())
                .collect(),
            revocations: (!self.revocations.is_empty()).then(|| self.revocations.clone()),
        }
    }

    /// The certificates known, encoded for the store (length-prefixed).
    pub fn encode_known(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for cert in self.known.values() {
            let bytes = cert.encode();
            out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
            out.extend_from_slice(&bytes);
        }
        out
    }

    /// Restores certificates saved by [`Trust::encode_known`], keeping those that verify.
    pub fn restore_known(&mut self, bytes: &[u8], now_unix_s: i64) {
        let mut reader = Reader { bytes, at: 0 };
        while reader.at < bytes.len() {
            let Ok(cert) = reader.block().and_then(decode_cert) else {
                return;
            };
            self.learn_certificate(cert, now_unix_s);
        }
    }
}

/// A [`Trust`] shared between the core and the gates of its sessions.
#[derive(Debug, Clone)]
pub struct TrustHandle(pub Arc<RwLock<Trust>>);

impl TrustHandle {
    pub fn new(trust: Trust) -> Self {
        Self(Arc::new(RwLock::new(trust)))
    }

    pub fn read(&self) -> std::sync::RwLockReadGuard<'_, Trust> {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn write(&self) -> std::sync::RwLockWriteGuard<'_, Trust> {
        self.0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl FeedGate for TrustHandle {
    fn relays(&self, origin: &NodeId) -> bool {
        !self.read().revocations.is_revoked(origin)
    }

    fn admits(&self, origin: &NodeId, scope: &Scope) -> Result<(), String> {
        let trust = self.read();
        if trust.revocations.is_revoked(origin) {
            return Err("the origin is revoked".to_owned());
        }
        let Some(cert) = trust.known.get(origin) else {
            return Err("no certificate is known for the origin".to_owned());
        };
        if !cert.body().write.contains(scope) {
            return Err(format!(
                "the origin's certificate ({}) does not write this scope",
                cert.body().role
            ));
        }
        Ok(())
    }
}

/// One connection's opening frame (see the module doc).
#[derive(Debug, Default)]
pub struct Preamble {
    pub own: Option<Certificate>,
    pub others: Vec<Certificate>,
    pub revocations: Option<RevocationList>,
}

impl Preamble {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.push(VERSION);
        block(
            &mut out,
            &self
                .own
                .as_ref()
                .map(Certificate::encode)
                .unwrap_or_default(),
        );
        let count = self.others.len().min(MAX_CERTIFICATES);
        out.extend_from_slice(&(count as u16).to_be_bytes());
        for cert in self.others.iter().take(count) {
            block(&mut out, &cert.encode());
        }
        let revocations = self
            .revocations
            .as_ref()
            .map(RevocationList::encode)
            .unwrap_or_default();
        block(&mut out, &revocations);
        out
    }

    /// Decodes a preamble; revocations verify against `authority` (an open box has none and
    /// reads only whether a certificate was presented).
    pub fn decode(
        bytes: &[u8],
        authority: Option<&AuthorityPublicKey>,
    ) -> Result<Self, AdmitError> {
        let mut reader = Reader { bytes, at: 0 };
        if reader.take(4)? != MAGIC {
            return Err(AdmitError::Malformed(
                "not a culao preamble (bad magic)".into(),
            ));
        }
        let version = reader.take(1)?[0];
        if version != VERSION {
            return Err(AdmitError::Malformed(format!(
                "preamble version {version} is unknown (this build reads {VERSION})"
            )));
        }
        let own = reader.block()?;
        let own = (!own.is_empty()).then(|| decode_cert(own)).transpose()?;
        let count = u16::from_be_bytes([reader.take(1)?[0], reader.take(1)?[0]]) as usize;
        if count > MAX_CERTIFICATES {
            return Err(AdmitError::Malformed(format!(
                "{count} certificates announced"
            )));
        }
        let mut others = Vec::with_capacity(count);
        for _ in 0..count {
            others.push(decode_cert(reader.block()?)?);
        }
        let revocations = reader.block()?;
        // Revocations are judged only for a peer of this network: another network's list does
        // not verify here, and the peer is refused for its network, which says more.
        let same_network = |authority: &AuthorityPublicKey| {
            own.as_ref()
                .is_some_and(|cert| cert.body().network == authority.network())
        };
        let revocations = match authority {
            Some(authority) if !revocations.is_empty() && same_network(authority) => {
                Some(RevocationList::decode(revocations, authority)?)
            }
            _ => None,
        };
        if reader.at != bytes.len() {
            return Err(AdmitError::Malformed(format!(
                "{} bytes after the preamble",
                bytes.len() - reader.at
            )));
        }
        Ok(Self {
            own,
            others,
            revocations,
        })
    }
}

fn decode_cert(bytes: &[u8]) -> Result<Certificate, AdmitError> {
    Ok(Certificate::decode(bytes)?)
}

fn block(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], AdmitError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|end| *end <= self.bytes.len());
        let Some(end) = end else {
            return Err(AdmitError::Malformed(format!(
                "truncated: {n} bytes expected at offset {}, {} left",
                self.at,
                self.bytes.len() - self.at
            )));
        };
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn block(&mut self) -> Result<&'a [u8], AdmitError> {
        let len = self.take(4)?;
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        self.take(len)
    }
}

/// Decides on a peer's preamble when this box runs open.
pub fn admit_open(preamble: &Preamble) -> Result<Admitted, AdmitError> {
    if preamble.own.is_some() {
        return Err(AdmitError::OpenBoxMeetsNetwork);
    }
    Ok(Admitted {
        peer: None,
        filter: ScopeFilter::All,
        newly_revoked: Vec::new(),
        learned: false,
    })
}

#[cfg(test)]
mod tests {
    use crdt_model::Identity;
    use provisioning::{AuthorityKey, CertificateBody, NetworkId, Policy, Role};

    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn authority(seed: u8) -> AuthorityKey {
        AuthorityKey::from_secret_bytes(NetworkId::from_bytes([seed; 16]), [seed; 32])
    }

    fn cert(authority: &AuthorityKey, node: NodeId, role: Role, valid: (i64, i64)) -> Certificate {
        let access = Policy::standard().access(role);
        authority
            .issue(CertificateBody {
                network: authority.network(),
                node,
                role,
                site: "site".parse().unwrap(),
                read: access.read,
                write: access.write,
                carry: access.carry,
                not_before_unix_s: valid.0,
                not_after_unix_s: valid.1,
                serial: u64::from(node.as_bytes()[0]),
            })
            .unwrap()
    }

    fn node(seed: u8) -> NodeId {
        Identity::from_secret_bytes([seed; 32]).node_id()
    }

    const VALID: (i64, i64) = (NOW - 10, NOW + 1000);

    fn hub_trust(authority: &AuthorityKey) -> Trust {
        let own = cert(authority, node(1), Role::Hub, VALID);
        Trust::new(authority.public(), own, RevocationList::new(), NOW).unwrap()
    }

    fn preamble_of(cert: Certificate) -> Preamble {
        Preamble {
            own: Some(cert),
            ..Preamble::default()
        }
    }

    #[test]
    fn a_valid_peer_is_admitted_with_the_scopes_both_may_receive() {
        let authority = authority(1);
        let mut hub = hub_trust(&authority);
        let resort = cert(&authority, node(2), Role::Resort, VALID);
        let encoded = preamble_of(resort).encode();
        let preamble = Preamble::decode(&encoded, Some(&authority.public())).unwrap();
        let admitted = hub.admit(&node(2), preamble, NOW).unwrap();
        let ScopeFilter::Only(scopes) = admitted.filter else {
            panic!("an enrolled session is filtered");
        };
        assert!(scopes.contains(&Scope::new("tickets").unwrap()));
        assert!(!scopes.contains(&Scope::new("health").unwrap()));
        assert!(
            admitted.learned,
            "the resort's certificate is new to the hub"
        );
    }

    #[test]
    fn expired_foreign_mismatched_and_missing_certificates_are_refused() {
        let authority = authority(1);
        let mut hub = hub_trust(&authority);
        let expired = cert(&authority, node(2), Role::Resort, (NOW - 100, NOW - 1));
        assert!(matches!(
            hub.admit(&node(2), preamble_of(expired), NOW),
            Err(AdmitError::Certificate(CertError::Expired { .. }))
        ));
        let other = self::authority(9);
        let foreign = Preamble {
            own: Some(cert(&other, node(2), Role::Resort, VALID)),
            others: Vec::new(),
            revocations: Some({
                let mut list = RevocationList::new();
                list.insert(&other.public(), other.revoke(node(7), 1, NOW))
                    .unwrap();
                list
            }),
        };
        let decoded = Preamble::decode(&foreign.encode(), Some(&authority.public())).unwrap();
        assert!(
            matches!(
                hub.admit(&node(2), decoded, NOW),
                Err(AdmitError::Certificate(CertError::OtherNetwork { .. }))
            ),
            "refused for its network, even though its revocations do not verify here"
        );
        let someone_elses = cert(&authority, node(3), Role::Resort, VALID);
        assert!(matches!(
            hub.admit(&node(2), preamble_of(someone_elses), NOW),
            Err(AdmitError::Certificate(CertError::NodeMismatch { .. }))
        ));
        assert!(matches!(
            hub.admit(&node(2), Preamble::default(), NOW),
            Err(AdmitError::NoCertificate)
        ));
        let revocation = authority.revoke(node(2), 2, NOW);
        let mut list = RevocationList::new();
        list.insert(&authority.public(), revocation).unwrap();
        let revoked = Preamble {
            own: Some(cert(&authority, node(2), Role::Resort, VALID)),
            others: Vec::new(),
            revocations: Some(list),
        };
        assert!(matches!(
            hub.admit(&node(2), revoked, NOW),
            Err(AdmitError::Certificate(CertError::Revoked { .. }))
        ));
    }

    #[test]
    fn the_gate_admits_only_certified_writers_of_a_scope() {
        let authority = authority(1);
        let mut hub = hub_trust(&authority);
        let clinic = cert(&authority, node(2), Role::Clinic, VALID);
        let resort = cert(&authority, node(3), Role::Resort, VALID);
        let relayed = Preamble {
            own: Some(clinic),
            others: vec![resort],
            revocations: None,
        };
        hub.admit(&node(2), relayed, NOW).unwrap();
        let gate = TrustHandle::new(hub);
        let health = Scope::new("health").unwrap();
        let tickets = Scope::new("tickets").unwrap();
        assert!(gate.admits(&node(2), &health).is_ok());
        assert!(
            gate.admits(&node(3), &health).is_err(),
            "a resort never writes health"
        );
        assert!(
            gate.admits(&node(3), &tickets).is_ok(),
            "relayed certificate known"
        );
        assert!(gate.admits(&node(4), &tickets).is_err(), "unknown origin");

        let mut list = RevocationList::new();
        list.insert(&authority.public(), authority.revoke(node(3), 3, NOW))
            .unwrap();
        let newly = gate.write().learn_revocations(&list).unwrap();
        assert_eq!(newly, vec![node(3)]);
        assert!(gate.admits(&node(3), &tickets).is_err());
        assert!(!gate.relays(&node(3)));
    }

    #[test]
    fn malformed_preambles_are_refused_with_what_was_wrong() {
        let authority = authority(1);
        let good = preamble_of(cert(&authority, node(2), Role::Resort, VALID)).encode();
        for (bytes, expect) in [
            (Vec::new(), "truncated"),
            (b"XXXX\x01".to_vec(), "bad magic"),
            ([&good[..5], &[0xff; 4]].concat(), "truncated"),
            ([&good[..], b"x"].concat(), "after the preamble"),
            ([&MAGIC[..], &[9]].concat(), "version 9"),
        ] {
            match Preamble::decode(&bytes, Some(&authority.public())) {
                Err(AdmitError::Malformed(reason)) => assert!(reason.contains(expect), "{reason}"),
                other => panic!("expected Malformed({expect}), got {other:?}"),
            }
        }
    }
}
