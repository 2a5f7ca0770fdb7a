//! `culao provision node`: a bundle is made, written, and loaded back by the box.

mod common;

use std::fs;

use common::{DAY, NOW, contains, mode, network, pem_der, request, set_mode};
use provisioning::bundle::{
    AUTHORITY_PUB_FILE, IDENTITY_FILE, NODE_CERT_FILE, PEERS_FILE, REVOCATIONS_FILE, TLS_CA_FILE,
    TLS_CERT_FILE, TLS_KEY_FILE,
};
use provisioning::enroll::MAX_VALIDITY_DAYS;
use provisioning::network::ISSUED_DIR;
use provisioning::{
    Bundle, BundleError, CertError, EnrollError, PeerSpec, Policy, Role, WriteError, enroll,
};

#[test]
fn a_bundle_round_trips_and_grants_the_roles_scopes() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, authority) = network(tmp.path());
    let bundle = enroll(&authority, &request(Role::Clinic, "tam-thanh-clinic")).unwrap();
    let out = tmp.path().join("clinic");
    bundle.write_to(&out).unwrap();

    let loaded = Bundle::load(&out, NOW).unwrap();
    assert_eq!(loaded.bundle.node_id(), bundle.node_id());
    assert_eq!(loaded.bundle.certificate, bundle.certificate);
    assert_eq!(loaded.bundle.peers, bundle.peers);
    assert_eq!(loaded.bundle.authority, authority.key().public());
    assert_eq!(loaded.bundle.tls.cert_pem, bundle.tls.cert_pem);
    assert_eq!(*loaded.bundle.tls.key_pem, *bundle.tls.key_pem);

    let access = Policy::standard().access(Role::Clinic);
    let me = &loaded.own;
    assert_eq!(
        (me.node, me.role, me.site.as_str()),
        (bundle.node_id(), Role::Clinic, "tam-thanh-clinic")
    );
    assert_eq!(
        (&me.read, &me.write, &me.carry),
        (&access.read, &access.write, &access.carry)
    );
    let body = bundle.certificate.body();
    assert_eq!(body.not_after_unix_s, NOW + 30 * DAY);
    assert!(body.not_before_unix_s <= NOW);
    assert_eq!(body.network, authority.network().id());
}

#[test]
fn the_identity_file_is_what_the_node_reads() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, authority) = network(tmp.path());
    let bundle = enroll(&authority, &request(Role::Port, "port")).unwrap();
    let out = tmp.path().join("port");
    bundle.write_to(&out).unwrap();

    let line = fs::read_to_string(out.join(IDENTITY_FILE)).unwrap();
    let secret = hex::encode(bundle.identity.secret_bytes());
    assert_eq!(line, format!("culao-identity-v1 {secret}\n"));
    for secret_file in [IDENTITY_FILE, TLS_KEY_FILE] {
        assert_eq!(mode(&out.join(secret_file)), 0o600, "{secret_file}");
    }
    assert_eq!(mode(&out), 0o700);
    assert!(
        !format!("{bundle:?}").contains(&secret),
        "Debug shows the identity"
    );
    assert!(
        !format!("{bundle:?}").contains("PRIVATE KEY"),
        "Debug shows the TLS key"
    );
}

#[test]
fn every_enrollment_is_recorded_with_a_new_serial() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, authority) = network(tmp.path());
    let first = enroll(&authority, &request(Role::Hub, "mainland-hub")).unwrap();
    let second = enroll(&authority, &request(Role::Port, "port")).unwrap();
    assert_eq!(first.certificate.body().serial, 1);
    assert_eq!(second.certificate.body().serial, 2);
    assert_ne!(first.node_id(), second.node_id());

    let issued = authority.network().issued().unwrap();
    assert_eq!(issued, vec![first.certificate.clone(), second.certificate]);
    assert!(dir.join(ISSUED_DIR).join("000001.cert").is_file());
}

#[test]
fn peers_get_the_role_and_site_they_were_issued() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, authority) = network(tmp.path());
    let hub = enroll(&authority, &request(Role::Hub, "mainland-hub")).unwrap();

    let mut clinic = request(Role::Clinic, "clinic");
    clinic.peers = vec![
        format!("{}@10.8.0.1:7100", hub.node_id()).parse().unwrap(),
        format!("{}@[fd00::1]:7100", hub.node_id()).parse().unwrap(),
        format!("{}@10.8.0.1:7100", hub.node_id()).parse().unwrap(),
    ];
    let bundle = enroll(&authority, &clinic).unwrap();
    let [peer] = bundle.peers.peers.as_slice() else {
        panic!("one peer expected: {:?}", bundle.peers);
    };
    assert_eq!(
        (peer.node, peer.role, peer.site.as_str()),
        (hub.node_id(), Role::Hub, "mainland-hub")
    );
    assert_eq!(peer.addrs.len(), 2, "{:?}", peer.addrs);
    assert_eq!(bundle.peers.listen, clinic.listen);

    let stranger = crdt_model::Identity::from_secret_bytes([7; 32]).node_id();
    let mut typo = request(Role::Clinic, "clinic");
    typo.peers = vec![PeerSpec {
        node: stranger,
        addr: "10.8.0.1:7100".parse().unwrap(),
    }];
    let err = enroll(&authority, &typo).unwrap_err();
    assert!(
        matches!(err, EnrollError::UnknownPeer { node } if node == stranger),
        "{err}"
    );
}

#[test]
fn validity_must_be_between_one_day_and_ten_years() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, authority) = network(tmp.path());
    for days in [0, MAX_VALIDITY_DAYS + 1] {
        let mut req = request(Role::School, "school");
        req.validity_days = days;
        let err = enroll(&authority, &req).unwrap_err();
        assert!(matches!(err, EnrollError::Validity { .. }), "{err}");
    }
    assert!(
        authority.network().issued().unwrap().is_empty(),
        "nothing recorded"
    );
}

#[test]
fn a_bundle_is_never_written_over_another() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, authority) = network(tmp.path());
    let out = tmp.path().join("box");
    enroll(&authority, &request(Role::Resort, "resort"))
        .unwrap()
        .write_to(&out)
        .unwrap();
    let identity = fs::read(out.join(IDENTITY_FILE)).unwrap();

    let second = enroll(&authority, &request(Role::Resort, "resort")).unwrap();
    let err = second.write_to(&out).unwrap_err();
    assert!(matches!(err, WriteError::NotEmpty { .. }), "{err}");
    assert_eq!(fs::read(out.join(IDENTITY_FILE)).unwrap(), identity);
}

#[test]
fn the_tls_certificate_names_the_box_and_chains_to_the_network_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, authority) = network(tmp.path());
    let mut req = request(Role::Commune, "ngu-phung");
    req.listen.push("0.0.0.0:443".parse().unwrap());
    let bundle = enroll(&authority, &req).unwrap();
    let node = pem_der(&bundle.tls.cert_pem);
    let ca = pem_der(&bundle.tls_ca_pem);

    assert!(
        contains(&node, bundle.node_id().to_string().as_bytes()),
        "CN is the node id"
    );
    let network = authority.network().id().to_string();
    let ca_org = format!("culao network {network}");
    assert!(contains(&ca, ca_org.as_bytes()));
    // The box's organization is the bare network id: its MQTT tenant (docs/mqtt.md).
    let org = [&[0x55, 0x04, 0x0a, 0x0c, 32][..], network.as_bytes()].concat();
    assert!(contains(&node, &org), "O = network id");
    for name in ["ngu-phung", "ngu-phung.local", "localhost"] {
        let mut san = vec![0x82, u8::try_from(name.len()).unwrap()];
        san.extend_from_slice(name.as_bytes());
        assert!(contains(&node, &san), "SAN {name}");
    }
    for ip in [[127, 0, 0, 1], [192, 168, 10, 2]] {
        assert!(
            contains(&node, &[&[0x87, 4][..], &ip].concat()),
            "SAN {ip:?}"
        );
    }
    assert!(
        !contains(&node, &[0x87, 4, 0, 0, 0, 0]),
        "0.0.0.0 is not a name"
    );

    // The CA's subject key id (extension 2.5.29.14) is the node certificate's authority key
    // id: the node certificate was signed with the key behind tls-ca.pem.
    let ski_at = ca
        .windows(5)
        .position(|w| w == [0x06, 0x03, 0x55, 0x1d, 0x0e])
        .expect("CA has a subject key id");
    let ca_key_id = &ca[ski_at + 9..ski_at + 9 + 20];
    assert!(contains(&node, &[&[0x80, 20][..], ca_key_id].concat()));
}

#[test]
fn a_bundle_whose_files_disagree_is_refused_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, authority) = network(tmp.path());
    let out = tmp.path().join("box");
    let other = tmp.path().join("other");
    enroll(&authority, &request(Role::Ferry, "ferry"))
        .unwrap()
        .write_to(&out)
        .unwrap();
    enroll(&authority, &request(Role::Ferry, "ferry"))
        .unwrap()
        .write_to(&other)
        .unwrap();
    let fresh = || {
        let dir = tmp.path().join("scratch");
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).unwrap();
        for name in [
            IDENTITY_FILE,
            NODE_CERT_FILE,
            AUTHORITY_PUB_FILE,
            PEERS_FILE,
            REVOCATIONS_FILE,
        ] {
            fs::copy(out.join(name), dir.join(name)).unwrap();
        }
        fs::create_dir(dir.join("tls")).unwrap();
        for name in [TLS_CA_FILE, TLS_CERT_FILE, TLS_KEY_FILE] {
            fs::copy(out.join(name), dir.join(name)).unwrap();
        }
        assert!(Bundle::load(&dir, NOW).is_ok());
        dir
    };

    let dir = fresh();
    fs::copy(other.join(IDENTITY_FILE), dir.join(IDENTITY_FILE)).unwrap();
    let err = Bundle::load(&dir, NOW).unwrap_err();
    assert!(matches!(err, BundleError::NodeMismatch { .. }), "{err}");
    assert!(err.to_string().contains(NODE_CERT_FILE), "{err}");

    let dir = fresh();
    set_mode(&dir.join(IDENTITY_FILE), 0o640);
    let err = Bundle::load(&dir, NOW).unwrap_err();
    assert!(
        matches!(err, BundleError::Permissions { mode: 0o640, .. }),
        "{err}"
    );
    assert!(err.to_string().contains(IDENTITY_FILE), "{err}");

    let dir = fresh();
    set_mode(&dir.join(TLS_KEY_FILE), 0o604);
    let err = Bundle::load(&dir, NOW).unwrap_err();
    assert!(err.to_string().contains(TLS_KEY_FILE), "{err}");

    let dir = fresh();
    fs::write(dir.join(IDENTITY_FILE), "culao-identity-v1 1234\n").unwrap();
    let err = Bundle::load(&dir, NOW).unwrap_err();
    assert!(matches!(err, BundleError::Malformed { .. }), "{err}");
    assert!(err.to_string().contains(IDENTITY_FILE), "{err}");

    let dir = fresh();
    let cert = fs::read_to_string(dir.join(NODE_CERT_FILE)).unwrap();
    fs::write(dir.join(NODE_CERT_FILE), &cert[..cert.len() - 40]).unwrap();
    let err = Bundle::load(&dir, NOW).unwrap_err();
    assert!(matches!(err, BundleError::Certificate { .. }), "{err}");
    assert!(err.to_string().contains(NODE_CERT_FILE), "{err}");

    let dir = fresh();
    fs::write(dir.join(PEERS_FILE), "listen = 7\n").unwrap();
    let err = Bundle::load(&dir, NOW).unwrap_err();
    assert!(err.to_string().contains(PEERS_FILE), "{err}");

    let dir = fresh();
    fs::write(dir.join(TLS_CERT_FILE), "nonsense").unwrap();
    let err = Bundle::load(&dir, NOW).unwrap_err();
    assert!(err.to_string().contains(TLS_CERT_FILE), "{err}");

    let dir = fresh();
    fs::remove_file(dir.join(AUTHORITY_PUB_FILE)).unwrap();
    let err = Bundle::load(&dir, NOW).unwrap_err();
    assert!(err.to_string().contains(AUTHORITY_PUB_FILE), "{err}");
}

#[test]
fn a_bundle_from_another_authority_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, ours) = network(tmp.path());
    let elsewhere = tempfile::tempdir().unwrap();
    let (_, theirs) = network(elsewhere.path());
    let out = tmp.path().join("box");
    enroll(&theirs, &request(Role::Hub, "hub"))
        .unwrap()
        .write_to(&out)
        .unwrap();
    fs::write(
        out.join(AUTHORITY_PUB_FILE),
        format!("{}\n", ours.key().public()),
    )
    .unwrap();
    fs::write(
        out.join(REVOCATIONS_FILE),
        ours.network().revocations().unwrap().to_armored(),
    )
    .unwrap();

    let err = Bundle::load(&out, NOW).unwrap_err();
    assert!(
        matches!(
            err,
            BundleError::Certificate {
                source: CertError::OtherNetwork { .. },
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn an_expired_bundle_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, authority) = network(tmp.path());
    let out = tmp.path().join("box");
    enroll(&authority, &request(Role::School, "school"))
        .unwrap()
        .write_to(&out)
        .unwrap();
    assert!(
        Bundle::load(&out, NOW + 30 * DAY).is_ok(),
        "valid through its last second"
    );
    let err = Bundle::load(&out, NOW + 30 * DAY + 1).unwrap_err();
    assert!(
        matches!(
            err,
            BundleError::Certificate {
                source: CertError::Expired { .. },
                ..
            }
        ),
        "{err}"
    );
}
