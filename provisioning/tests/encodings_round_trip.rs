//! Property tests: every encoding reads back what was written, and merging revocations does
//! not depend on order.

#![allow(
    clippy::unwrap_used,
    reason = "strategies build only valid values; a panic fails the test"
)]

use std::collections::BTreeSet;
use std::net::SocketAddr;

use crdt_model::{Identity, NodeId, Scope};
use proptest::prelude::*;
use provisioning::peers::{Peer, Peers};
use provisioning::policy::SCOPES;
use provisioning::sealed::{self, KdfParams, SealError};
use provisioning::{
    AuthorityKey, Certificate, CertificateBody, NetworkId, Passphrase, RevocationList, Role, Site,
};

fn authority() -> AuthorityKey {
    AuthorityKey::from_secret_bytes(NetworkId::from_bytes([4; 16]), [5; 32])
}

fn node(seed: u8) -> NodeId {
    Identity::from_secret_bytes([seed; 32]).node_id()
}

fn role() -> impl Strategy<Value = Role> {
    proptest::sample::select(Role::ALL.to_vec())
}

fn site() -> impl Strategy<Value = Site> {
    "[a-z]([a-z0-9-]{0,61}[a-z0-9])?".prop_map(|s| Site::new(&s).unwrap())
}

fn scopes() -> impl Strategy<Value = BTreeSet<Scope>> {
    proptest::sample::subsequence(SCOPES.to_vec(), 0..=SCOPES.len())
        .prop_map(|names| names.iter().map(|n| Scope::new(n).unwrap()).collect())
}

/// A body the authority accepts: writes within reads, carries outside them.
fn body() -> impl Strategy<Value = CertificateBody> {
    (
        role(),
        site(),
        any::<u8>(),
        scopes(),
        scopes(),
        scopes(),
        any::<i32>(),
        0..1_000_000i64,
    )
        .prop_map(|(role, site, seed, read, write, carry, start, length)| {
            let write = write.intersection(&read).cloned().collect();
            let carry = carry.difference(&read).cloned().collect();
            CertificateBody {
                network: authority().network(),
                node: node(seed),
                role,
                site,
                read,
                write,
                carry,
                not_before_unix_s: i64::from(start),
                not_after_unix_s: i64::from(start) + length,
                serial: u64::from(seed) * 7,
            }
        })
}

fn addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::from((ip, port))),
        (any::<[u16; 8]>(), any::<u16>()).prop_map(|(ip, port)| SocketAddr::from((ip, port))),
    ]
}

proptest! {
    #[test]
    fn a_certificate_reads_back_and_verifies_within_its_validity(body in body()) {
        let cert = authority().issue(body.clone()).unwrap();
        prop_assert_eq!(Certificate::decode(&cert.encode()), Ok(cert.clone()));
        prop_assert_eq!(Certificate::from_armored(&cert.to_armored()), Ok(cert.clone()));

        let none = RevocationList::new();
        let peer = cert.verify(&authority().public(), body.not_after_unix_s, &none).unwrap();
        prop_assert_eq!((&peer.read, &peer.write, &peer.carry), (&body.read, &body.write, &body.carry));
        prop_assert!(cert.verify(&authority().public(), body.not_after_unix_s + 1, &none).is_err());
    }

    #[test]
    fn revocation_lists_merge_to_the_same_list_in_any_order(
        entries in proptest::collection::vec((0u8..6, 0u64..4, 0i64..1_000), 0..12),
        split in 0usize..12,
    ) {
        let authority = authority();
        let public = authority.public();
        let revocations: Vec<_> = entries
            .iter()
            .map(|(seed, serial, at)| authority.revoke(node(*seed), *serial, *at))
            .collect();
        let (left, right) = revocations.split_at(split.min(revocations.len()));
        let list = |items: &[provisioning::Revocation]| {
            let mut list = RevocationList::new();
            for r in items {
                list.insert(&public, *r).unwrap();
            }
            list
        };
        let (mut a, mut b) = (list(left), list(right));
        let (a0, b0) = (a.clone(), b.clone());
        a.merge(&public, &b0).unwrap();
        b.merge(&public, &a0).unwrap();
        prop_assert_eq!(&a, &b);
        prop_assert_eq!(&a, &list(&revocations));
        prop_assert_eq!(RevocationList::from_armored(&a.to_armored(), &public), Ok(a.clone()));
    }

    #[test]
    fn peers_toml_reads_back(
        listen in proptest::collection::vec(addr(), 0..3),
        peers in proptest::collection::vec(
            (any::<u8>(), role(), site(), proptest::collection::vec(addr(), 1..3)), 0..4),
    ) {
        let peers = Peers {
            listen,
            peers: peers
                .into_iter()
                .map(|(seed, role, site, addrs)| Peer { node: node(seed), role, site, addrs })
                .collect(),
        };
        prop_assert_eq!(Peers::from_toml(&peers.to_toml()), Ok(peers));
    }
}

proptest! {
    // Each case derives a key twice with argon2 at the standard cost: keep the count low.
    #![proptest_config(ProptestConfig::with_cases(8))]

    #[test]
    fn a_sealed_secret_opens_with_its_passphrase_and_no_other(
        secret in proptest::collection::vec(any::<u8>(), 0..200),
        passphrase in "[ -~]{8,40}",
        other in "[ -~]{8,40}",
    ) {
        prop_assume!(passphrase != other);
        let text = sealed::seal(&secret, &Passphrase::new(passphrase.clone()), KdfParams::STANDARD)
            .unwrap();
        let opened = sealed::unseal(&text, &Passphrase::new(passphrase)).unwrap();
        prop_assert_eq!(opened.as_slice(), secret.as_slice());
        prop_assert_eq!(
            sealed::unseal(&text, &Passphrase::new(other)),
            Err(SealError::WrongPassphrase)
        );
    }
}
