//! Node certificates: the authority's word on who a box is and what it may hold.
//!
//! # Encoding, version 1
//!
//! All integers big-endian; `str` is a one-byte length then that many bytes; a scope set is a
//! one-byte count then that many `str`, in strictly ascending order.
//!
//! | bytes | field |
//! | --- | --- |
//! | 4 | magic `CLCT` |
//! | 1 | version, `1` |
//! | 16 | network id |
//! | 32 | node id (ed25519 public key) |
//! | str | role (`hub`, `port`, ...) |
//! | str | site |
//! | set | scopes read |
//! | set | scopes written |
//! | set | scopes carried |
//! | 8 | not_before, unix seconds (signed) |
//! | 8 | not_after, unix seconds (signed), inclusive |
//! | 8 | serial |
//! | 64 | ed25519 signature by the authority |
//!
//! The signature covers `culao-certificate-signature-v1` followed by every byte before it.
//! The decoder accepts exactly one encoding of each certificate (sorted sets, no trailing
//! bytes). On disk a certificate is armored as hex text (`-----BEGIN CULAO CERTIFICATE-----`).

use std::collections::BTreeSet;

use crdt_model::{NodeId, Scope};

use crate::authority::AuthorityPublicKey;
use crate::codec::{self, DecodeError, Reader, Writer};
use crate::names::{NetworkId, Site};
use crate::policy::Role;
use crate::revocation::RevocationList;

const MAGIC: &[u8; 4] = b"CLCT";
pub const CERTIFICATE_VERSION: u8 = 1;
const SIGNATURE_CONTEXT: &[u8] = b"culao-certificate-signature-v1";
const ARMOR_LABEL: &str = "CERTIFICATE";

/// Why a certificate was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    #[error("certificate is truncated: {needed} more bytes expected, {remaining} left")]
    Truncated { needed: usize, remaining: usize },
    #[error("certificate is malformed: {reason}")]
    Malformed { reason: String },
    #[error("certificate version {version} is unknown (this build reads {CERTIFICATE_VERSION})")]
    UnknownVersion { version: u8 },
    #[error("certificate names unknown role {role:?}")]
    UnknownRole { role: String },
    #[error("certificate is for network {found}, this box belongs to {expected}")]
    OtherNetwork {
        expected: NetworkId,
        found: NetworkId,
    },
    #[error("certificate {serial} of {node} is not signed by this network's authority")]
    BadSignature { node: NodeId, serial: u64 },
    #[error(
        "certificate {serial} of {node} is valid from {not_before_unix_s}, now is {now_unix_s}"
    )]
    NotYetValid {
        node: NodeId,
        serial: u64,
        not_before_unix_s: i64,
        now_unix_s: i64,
    },
    #[error("certificate {serial} of {node} expired at {not_after_unix_s}, now is {now_unix_s}")]
    Expired {
        node: NodeId,
        serial: u64,
        not_after_unix_s: i64,
        now_unix_s: i64,
    },
    #[error("node {node} was revoked at {revoked_at_unix_s}")]
    Revoked {
        node: NodeId,
        revoked_at_unix_s: i64,
    },
    #[error("peer {presented} presented the certificate of {certified}")]
    NodeMismatch {
        presented: NodeId,
        certified: NodeId,
    },
}

impl From<DecodeError> for CertError {
    fn from(err: DecodeError) -> Self {
        match err {
            DecodeError::Truncated { needed, remaining } => {
                CertError::Truncated { needed, remaining }
            }
            DecodeError::Malformed { reason } => CertError::Malformed { reason },
        }
    }
}

/// What the authority vouches for.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CertificateBody {
    pub network: NetworkId,
    pub node: NodeId,
    pub role: Role,
    pub site: Site,
    pub read: BTreeSet<Scope>,
    pub write: BTreeSet<Scope>,
    pub carry: BTreeSet<Scope>,
    pub not_before_unix_s: i64,
    /// Inclusive: the certificate is valid during this second.
    pub not_after_unix_s: i64,
    /// Unique within the network, assigned by the authority in issue order.
    pub serial: u64,
}

impl CertificateBody {
    fn encode(&self) -> Vec<u8> {
        Writer::new()
            .bytes(MAGIC)
            .u8(CERTIFICATE_VERSION)
            .bytes(self.network.as_bytes())
            .bytes(self.node.as_bytes())
            .short_str(self.role.as_str())
            .short_str(self.site.as_str())
            .scopes(&self.read)
            .scopes(&self.write)
            .scopes(&self.carry)
            .i64(self.not_before_unix_s)
            .i64(self.not_after_unix_s)
            .u64(self.serial)
            .finish()
    }

    pub(crate) fn signed_message(&self) -> Vec<u8> {
        let mut message = SIGNATURE_CONTEXT.to_vec();
        message.extend_from_slice(&self.encode());
        message
    }

    fn decode(reader: &mut Reader<'_>) -> Result<Self, CertError> {
        if reader.take(MAGIC.len())? != MAGIC {
            return Err(CertError::Malformed {
                reason: "not a culao certificate (bad magic)".to_owned(),
            });
        }
        let version = reader.u8()?;
        if version != CERTIFICATE_VERSION {
            return Err(CertError::UnknownVersion { version });
        }
        let network = NetworkId::from_bytes(reader.array()?);
        let node = NodeId::from_bytes(reader.array()?);
        let role = reader.short_str("role")?;
        let role = role.parse::<Role>().map_err(|_| CertError::UnknownRole {
            role: role.to_owned(),
        })?;
        let site = Site::new(reader.short_str("site")?).map_err(|err| CertError::Malformed {
            reason: err.to_string(),
        })?;
        Ok(Self {
            network,
            node,
            role,
            site,
            read: reader.scopes("scopes read")?,
            write: reader.scopes("scopes written")?,
            carry: reader.scopes("scopes carried")?,
            not_before_unix_s: reader.i64()?,
            not_after_unix_s: reader.i64()?,
            serial: reader.u64()?,
        })
    }
}

/// A signed certificate. Decoding checks only its shape; [`Certificate::verify`] decides.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Certificate {
    body: CertificateBody,
    signature: [u8; 64],
}

impl Certificate {
    pub(crate) fn from_parts(body: CertificateBody, signature: [u8; 64]) -> Self {
        Self { body, signature }
    }

    /// The claims, unverified: use them only to say what was refused.
    pub fn body(&self) -> &CertificateBody {
        &self.body
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = self.body.encode();
        bytes.extend_from_slice(&self.signature);
        bytes
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, CertError> {
        let mut reader = Reader::new(bytes);
        let body = CertificateBody::decode(&mut reader)?;
        let signature = reader.array::<64>()?;
        reader.finish()?;
        Ok(Self { body, signature })
    }

    pub fn to_armored(&self) -> String {
        codec::armor(ARMOR_LABEL, &self.encode())
    }

    pub fn from_armored(text: &str) -> Result<Self, CertError> {
        Self::decode(&codec::unarmor(ARMOR_LABEL, text)?)
    }

    /// Checks that the peer presenting this certificate (its iroh node id) is the node it
    /// names.
    pub fn check_node(&self, presented: &NodeId) -> Result<(), CertError> {
        if *presented != self.body.node {
            return Err(CertError::NodeMismatch {
                presented: *presented,
                certified: self.body.node,
            });
        }
        Ok(())
    }

    /// Decides whether the certificate holds at `now_unix_s`: it names `authority`'s network,
    /// carries its signature, is within its validity, and its node is not revoked.
    pub fn verify(
        &self,
        authority: &AuthorityPublicKey,
        now_unix_s: i64,
        revocations: &RevocationList,
    ) -> Result<VerifiedPeer, CertError> {
        let body = &self.body;
        if body.network != authority.network() {
            return Err(CertError::OtherNetwork {
                expected: authority.network(),
                found: body.network,
            });
        }
        if !authority.verifies(&body.signed_message(), &self.signature) {
            return Err(CertError::BadSignature {
                node: body.node,
                serial: body.serial,
            });
        }

        if now_unix_s < body.not_before_unix_s {
            return Err(CertError::NotYetValid {
                node: body.node,
                serial: body.serial,
                not_before_unix_s: body.not_before_unix_s,
                now_unix_s,
            });
        }
        if now_unix_s > body.not_after_unix_s {
            return Err(CertError::Expired {
                node: body.node,
                serial: body.serial,
                not_after_unix_s: body.not_after_unix_s,
                now_unix_s,
            });
        }
        if let Some(revocation) = revocations.revocation_of(&body.node) {
            return Err(CertError::Revoked {
                node: body.node,
                revoked_at_unix_s: revocation.body().revoked_at_unix_s,
            });
        }

        Ok(VerifiedPeer(body.clone()))
    }

    /// [`Certificate::check_node`] then [`Certificate::verify`]: what a session runs on the
    /// certificate its peer sent.
    pub fn verify_presented(
        &self,
        presented: &NodeId,
        authority: &AuthorityPublicKey,
        now_unix_s: i64,
        revocations: &RevocationList,
    ) -> Result<VerifiedPeer, CertError> {
        self.check_node(presented)?;
        self.verify(authority, now_unix_s, revocations)
    }
}

/// A node whose certificate verified: the certificate's body, which only
/// [`Certificate::verify`] makes into one. Its fields read through (`peer.role`).
///
/// It stays true only until `not_after_unix_s` or a revocation of `node`; a long session
/// re-verifies the certificate when either may have changed.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct VerifiedPeer(CertificateBody);

impl std::ops::Deref for VerifiedPeer {
    type Target = CertificateBody;

    fn deref(&self) -> &CertificateBody {
        &self.0
    }
}

impl VerifiedPeer {
    pub fn may_read(&self, scope: &Scope) -> bool {
        self.read.contains(scope)
    }

    pub fn may_write(&self, scope: &Scope) -> bool {
        self.write.contains(scope)
    }

    pub fn may_carry(&self, scope: &Scope) -> bool {
        self.carry.contains(scope)
    }

    /// Whether entries of `scope` may be sent to this node: it reads or carries the scope.
    pub fn may_receive(&self, scope: &Scope) -> bool {
        self.may_read(scope) || self.may_carry(scope)
    }

    /// Every scope this node may be sent.
    pub fn receivable(&self) -> BTreeSet<Scope> {
        self.read.union(&self.carry).cloned().collect()
    }
}

/// The scopes a session between `a` and `b` exchanges: those each of them reads or carries.
/// Anything outside it goes in neither direction.
pub fn shared_scopes(a: &VerifiedPeer, b: &VerifiedPeer) -> BTreeSet<Scope> {
    a.receivable()
        .intersection(&b.receivable())
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::authority::AuthorityKey;
    use crate::policy::Policy;

    const NOW: i64 = 1_790_000_000;
    const DAY: i64 = 86_400;

    fn authority(seed: u8) -> AuthorityKey {
        AuthorityKey::from_secret_bytes(NetworkId::from_bytes([seed; 16]), [seed; 32])
    }

    fn node(seed: u8) -> NodeId {
        crdt_model::Identity::from_secret_bytes([seed; 32]).node_id()
    }

    fn body(authority: &AuthorityKey, role: Role, node_seed: u8) -> CertificateBody {
        let access = Policy::standard().access(role);
        CertificateBody {
            network: authority.network(),
            node: node(node_seed),
            role,
            site: Site::new(&format!("{role}-site")).unwrap(),
            read: access.read,
            write: access.write,
            carry: access.carry,
            not_before_unix_s: NOW - DAY,
            not_after_unix_s: NOW + DAY,
            serial: u64::from(node_seed),
        }
    }

    fn issued(role: Role, node_seed: u8) -> Certificate {
        let authority = authority(1);
        authority.issue(body(&authority, role, node_seed)).unwrap()
    }

    fn verify(cert: &Certificate) -> Result<VerifiedPeer, CertError> {
        cert.verify(&authority(1).public(), NOW, &RevocationList::new())
    }

    #[test]
    fn a_certificate_round_trips_through_bytes_and_armor() {
        let cert = issued(Role::Clinic, 7);
        assert_eq!(Certificate::decode(&cert.encode()), Ok(cert.clone()));
        let text = cert.to_armored();
        assert!(text.starts_with("-----BEGIN CULAO CERTIFICATE-----\n"));
        assert_eq!(Certificate::from_armored(&text), Ok(cert.clone()));

        let peer = verify(&cert).unwrap();
        assert_eq!(peer.node, node(7));
        assert_eq!(peer.role, Role::Clinic);
        assert!(peer.may_read(&Scope::new("health").unwrap()));
    }

    #[test]
    fn the_encoding_starts_with_magic_and_version() {
        let bytes = issued(Role::Hub, 2).encode();
        assert_eq!(&bytes[..5], b"CLCT\x01");
        assert_eq!(&bytes[5..21], &[1; 16], "network id");
        assert_eq!(&bytes[21..53], node(2).as_bytes());
        assert_eq!(&bytes[53..57], b"\x03hub");
    }

    #[test]
    fn validity_is_checked_against_the_given_time() {
        let cert = issued(Role::Port, 3);
        let (authority, none) = (authority(1).public(), RevocationList::new());
        assert!(
            cert.verify(&authority, NOW + DAY, &none).is_ok(),
            "inclusive"
        );
        assert!(matches!(
            cert.verify(&authority, NOW + DAY + 1, &none),
            Err(CertError::Expired { not_after_unix_s, .. }) if not_after_unix_s == NOW + DAY
        ));
        assert!(matches!(
            cert.verify(&authority, NOW - DAY - 1, &none),
            Err(CertError::NotYetValid { .. })
        ));
    }

    #[test]
    fn a_certificate_of_another_authority_is_refused() {
        let cert = issued(Role::Port, 3);
        let other_network = authority(2).public();
        assert!(matches!(
            cert.verify(&other_network, NOW, &RevocationList::new()),
            Err(CertError::OtherNetwork { .. })
        ));

        let impostor = AuthorityKey::from_secret_bytes(NetworkId::from_bytes([1; 16]), [9; 32]);
        let forged = impostor.issue(body(&impostor, Role::Hub, 3)).unwrap();
        assert_eq!(
            verify(&forged),
            Err(CertError::BadSignature {
                node: node(3),
                serial: 3
            })
        );
    }

    #[test]
    fn a_revoked_node_is_refused() {
        let authority = authority(1);
        let cert = issued(Role::Resort, 4);
        let mut revocations = RevocationList::new();
        revocations
            .insert(&authority.public(), authority.revoke(node(4), 4, NOW - 10))
            .unwrap();
        assert_eq!(
            cert.verify(&authority.public(), NOW, &revocations),
            Err(CertError::Revoked {
                node: node(4),
                revoked_at_unix_s: NOW - 10
            })
        );
        let other = issued(Role::Resort, 5);
        assert!(other.verify(&authority.public(), NOW, &revocations).is_ok());
    }

    #[test]
    fn a_certificate_presented_by_another_node_is_refused() {
        let cert = issued(Role::Commune, 5);
        assert!(cert.check_node(&node(5)).is_ok());
        assert_eq!(
            cert.verify_presented(
                &node(6),
                &authority(1).public(),
                NOW,
                &RevocationList::new()
            ),
            Err(CertError::NodeMismatch {
                presented: node(6),
                certified: node(5)
            })
        );
    }

    #[test]
    fn any_flipped_byte_is_refused() {
        let bytes = issued(Role::Ferry, 8).encode();
        for i in 0..bytes.len() {
            let mut tampered = bytes.clone();
            tampered[i] ^= 0x01;
            let result = Certificate::decode(&tampered).and_then(|cert| verify(&cert));
            assert!(result.is_err(), "byte {i} flipped still verifies");
        }
        let mut tampered = bytes.clone();
        tampered[30] ^= 0x01;
        assert!(matches!(
            verify(&Certificate::decode(&tampered).unwrap()),
            Err(CertError::BadSignature { .. })
        ));
    }

    #[test]
    fn truncated_extended_and_unknown_version_are_refused() {
        let bytes = issued(Role::School, 9).encode();
        for len in 0..bytes.len() {
            assert!(
                matches!(
                    Certificate::decode(&bytes[..len]),
                    Err(CertError::Truncated { .. })
                ),
                "cut at {len}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(
            Certificate::decode(&longer),
            Err(CertError::Malformed { .. })
        ));
        let mut v2 = bytes.clone();
        v2[4] = 2;
        assert_eq!(
            Certificate::decode(&v2),
            Err(CertError::UnknownVersion { version: 2 })
        );
        let mut not_cert = bytes;
        not_cert[0] = b'X';
        assert!(matches!(
            Certificate::decode(&not_cert),
            Err(CertError::Malformed { .. })
        ));
    }

    #[test]
    fn an_unknown_role_or_unsorted_scopes_are_refused() {
        let mut bytes = issued(Role::Hub, 2).encode();
        bytes[54..57].copy_from_slice(b"hob");
        assert_eq!(
            Certificate::decode(&bytes),
            Err(CertError::UnknownRole {
                role: "hob".to_owned()
            })
        );

        let mut bytes = issued(Role::School, 2).encode();
        let start = 53 + 1 + "school".len() + 1 + "school-site".len() + 1;
        // read set is [cards, radio, sports, system]: swap the first two names' positions.
        assert_eq!(&bytes[start..start + 6], b"\x05cards");
        let swapped = [&b"\x05radio\x05cards"[..]].concat();
        bytes[start..start + 12].copy_from_slice(&swapped);
        assert!(matches!(
            Certificate::decode(&bytes),
            Err(CertError::Malformed { reason }) if reason.contains("ascending")
        ));
    }

    #[test]
    fn a_session_exchanges_only_what_both_may_receive() {
        let peer = |role, seed| verify(&issued(role, seed)).unwrap();
        let (clinic, resort, ferry, hub) = (
            peer(Role::Clinic, 1),
            peer(Role::Resort, 2),
            peer(Role::Ferry, 3),
            peer(Role::Hub, 4),
        );
        let health = Scope::new("health").unwrap();
        assert!(shared_scopes(&clinic, &hub).contains(&health));
        assert!(shared_scopes(&clinic, &ferry).contains(&health));
        assert!(!shared_scopes(&ferry, &resort).contains(&health));
        assert!(!shared_scopes(&clinic, &resort).contains(&health));
        assert!(shared_scopes(&resort, &hub).contains(&Scope::new("lodging").unwrap()));
        assert_eq!(shared_scopes(&hub, &ferry), ferry.receivable());
    }
}
