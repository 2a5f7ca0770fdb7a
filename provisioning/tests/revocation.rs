//! `culao provision revoke`: a revoked box is shut out, and its replacement joins.

mod common;

use std::fs;

use common::{NOW, network, request};
use provisioning::bundle::REVOCATIONS_FILE;
use provisioning::network::REVOCATIONS_FILE as NETWORK_REVOCATIONS_FILE;
use provisioning::{
    Bundle, BundleError, CertError, EnrollError, NetworkDir, RevocationList, RevokeError, Role,
    enroll, revoke,
};

#[test]
fn a_revoked_node_is_refused_by_certificate_verification() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, authority) = network(tmp.path());
    let resort = enroll(&authority, &request(Role::Resort, "resort")).unwrap();
    let port = enroll(&authority, &request(Role::Port, "port")).unwrap();

    let revocation = revoke(&authority, &resort.node_id(), NOW + 10).unwrap();
    assert_eq!(revocation.body().node, resort.node_id());
    assert_eq!(revocation.body().serial, resort.certificate.body().serial);
    assert!(revocation.verify(&authority.key().public()).is_ok());

    // The list on disk is what a box is handed; it verifies against the public key alone.
    let network = NetworkDir::open(&dir).unwrap();
    let text = fs::read_to_string(dir.join(NETWORK_REVOCATIONS_FILE)).unwrap();
    let list = RevocationList::from_armored(&text, network.public_key()).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(
        resort
            .certificate
            .verify(network.public_key(), NOW + 20, &list),
        Err(CertError::Revoked {
            node: resort.node_id(),
            revoked_at_unix_s: NOW + 10
        })
    );
    assert!(
        port.certificate
            .verify(network.public_key(), NOW + 20, &list)
            .is_ok()
    );
}

#[test]
fn a_box_handed_the_new_list_refuses_to_start_with_its_revoked_bundle() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, authority) = network(tmp.path());
    let out = tmp.path().join("lost-box");
    let bundle = enroll(&authority, &request(Role::Clinic, "clinic")).unwrap();
    bundle.write_to(&out).unwrap();
    revoke(&authority, &bundle.node_id(), NOW).unwrap();

    assert!(
        Bundle::load(&out, NOW).is_ok(),
        "the bundle's own list predates the revocation"
    );
    fs::copy(
        dir.join(NETWORK_REVOCATIONS_FILE),
        out.join(REVOCATIONS_FILE),
    )
    .unwrap();
    let err = Bundle::load(&out, NOW).unwrap_err();
    assert!(
        matches!(
            err,
            BundleError::Certificate {
                source: CertError::Revoked { .. },
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn a_replacement_box_gets_a_new_identity_for_the_same_site() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, authority) = network(tmp.path());
    let old = enroll(&authority, &request(Role::Clinic, "tam-thanh-clinic")).unwrap();
    revoke(&authority, &old.node_id(), NOW).unwrap();
    let new = enroll(&authority, &request(Role::Clinic, "tam-thanh-clinic")).unwrap();

    assert_ne!(new.node_id(), old.node_id());
    assert!(new.certificate.body().serial > old.certificate.body().serial);
    assert_eq!(new.certificate.body().site, old.certificate.body().site);
    assert_eq!(
        new.revocations.len(),
        1,
        "the new box learns of the old one's revocation"
    );
    let me = new
        .certificate
        .verify(&authority.key().public(), NOW, &new.revocations)
        .unwrap();
    assert_eq!(me.site.as_str(), "tam-thanh-clinic");
}

#[test]
fn revoking_twice_keeps_one_revocation_and_a_stranger_cannot_be_revoked() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, authority) = network(tmp.path());
    let ferry = enroll(&authority, &request(Role::Ferry, "ferry")).unwrap();
    let first = revoke(&authority, &ferry.node_id(), NOW).unwrap();
    let second = revoke(&authority, &ferry.node_id(), NOW + 100).unwrap();
    assert_eq!(second, first, "the earlier revocation stands");
    assert_eq!(authority.network().revocations().unwrap().len(), 1);

    let stranger = crdt_model::Identity::from_secret_bytes([9; 32]).node_id();
    let err = revoke(&authority, &stranger, NOW).unwrap_err();
    assert!(
        matches!(err, RevokeError::NotIssued { node } if node == stranger),
        "{err}"
    );
}

#[test]
fn a_revoked_box_cannot_be_named_as_a_peer() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, authority) = network(tmp.path());
    let hub = enroll(&authority, &request(Role::Hub, "hub")).unwrap();
    revoke(&authority, &hub.node_id(), NOW).unwrap();
    let mut req = request(Role::Port, "port");
    req.peers = vec![format!("{}@10.8.0.1:7100", hub.node_id()).parse().unwrap()];
    let err = enroll(&authority, &req).unwrap_err();
    assert!(matches!(err, EnrollError::RevokedPeer { .. }), "{err}");
}
