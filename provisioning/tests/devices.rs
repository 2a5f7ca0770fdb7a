//! `culao provision device`: a site device gets a client certificate naming its topic root,
//! a password whose digest goes to the box, and a name no other device of the network has.

mod common;

use common::{NOW, contains, mode, network, pem_der, set_mode};
use provisioning::device::{
    DEVICE_CA_FILE, DEVICE_CERT_FILE, DEVICE_KEY_FILE, DEVICE_PASSWORD_FILE, DEVICES_DIR,
    MAX_DEVICE_VALIDITY_DAYS, password_matches,
};
use provisioning::{DeviceClass, DeviceError, DeviceName, DeviceRequest, Site, issue_device};

#[allow(
    clippy::unwrap_used,
    reason = "test helper: a failure here is a failed test"
)]
fn request(name: &str) -> DeviceRequest {
    DeviceRequest {
        name: DeviceName::new(name).unwrap(),
        class: DeviceClass::Gate,
        site: Site::new("port").unwrap(),
        validity_days: 365,
        now_unix_s: NOW,
    }
}

#[test]
fn a_device_certificate_names_its_topic_root_and_chains_to_the_network_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, authority) = network(tmp.path());
    let device = issue_device(&authority, &request("gate1")).unwrap();

    let cert = pem_der(&device.cert_pem);
    // O (2.5.4.10) = "gate1", the tenant rumqttd holds the device to.
    assert!(contains(
        &cert,
        &[0x55, 0x04, 0x0a, 0x0c, 5, b'g', b'a', b't', b'e', b'1']
    ));
    // Client authentication only (1.3.6.1.5.5.7.3.2), never server.
    assert!(contains(&cert, &[0x2b, 6, 1, 5, 5, 7, 3, 2]));
    assert!(!contains(&cert, &[0x2b, 6, 1, 5, 5, 7, 3, 1]));
    assert_eq!(device.ca_pem, authority.network().tls_ca_pem().unwrap());
    assert!(dir.join(DEVICES_DIR).join("gate1.pem").exists());

    let line = device.users_line();
    let (name, digest) = line.split_once(' ').unwrap();
    assert_eq!(name, "gate1");
    assert_eq!(password_matches(digest, &device.password), Some(true));
    assert!(!line.contains(device.password.as_str()));
    let shown = format!("{device:?}");
    assert!(!shown.contains(device.password.as_str()) && !shown.contains("PRIVATE"));
}

#[test]
fn a_device_name_is_issued_once_per_network() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, authority) = network(tmp.path());
    issue_device(&authority, &request("reader2")).unwrap();
    let again = issue_device(&authority, &request("reader2")).unwrap_err();
    assert!(
        matches!(again, DeviceError::Exists { ref name, .. } if name == "reader2"),
        "{again}"
    );
    issue_device(&authority, &request("reader3")).unwrap();
}

#[test]
fn credentials_are_written_once_with_private_key_and_password() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, authority) = network(tmp.path());
    let device = issue_device(&authority, &request("speaker1")).unwrap();
    let out = tmp.path().join("speaker1");
    device.write_to(&out).unwrap();
    assert_eq!(mode(&out.join(DEVICE_KEY_FILE)), 0o600);
    assert_eq!(mode(&out.join(DEVICE_PASSWORD_FILE)), 0o600);
    assert_eq!(mode(&out.join(DEVICE_CERT_FILE)), 0o644);
    let password = std::fs::read_to_string(out.join(DEVICE_PASSWORD_FILE)).unwrap();
    assert_eq!(password.trim_end(), device.password.as_str());
    assert_eq!(
        std::fs::read_to_string(out.join(DEVICE_CA_FILE)).unwrap(),
        device.ca_pem
    );
    assert!(matches!(
        device.write_to(&out),
        Err(DeviceError::NotEmpty { .. })
    ));
}

#[test]
fn validity_is_bounded() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, authority) = network(tmp.path());
    for days in [0, MAX_DEVICE_VALIDITY_DAYS + 1] {
        let mut req = request("gate9");
        req.validity_days = days;
        assert!(matches!(
            issue_device(&authority, &req),
            Err(DeviceError::Validity { .. })
        ));
    }
}

#[test]
fn a_users_file_gets_one_private_line_per_device() {
    let tmp = tempfile::tempdir().unwrap();
    let (_dir, authority) = network(tmp.path());
    let users = tmp.path().join("users");
    std::fs::write(&users, "# site devices\nreader1 blake3:00").unwrap();
    set_mode(&users, 0o600);
    let device = issue_device(&authority, &request("gate1")).unwrap();
    device.add_to_users_file(&users).unwrap();
    let text = std::fs::read_to_string(&users).unwrap();
    assert_eq!(
        text,
        format!(
            "# site devices\nreader1 blake3:00\n{}\n",
            device.users_line()
        )
    );

    let err = device.add_to_users_file(&users).unwrap_err();
    assert!(matches!(err, DeviceError::InUsersFile { .. }), "{err}");
    assert_eq!(std::fs::read_to_string(&users).unwrap(), text);

    let fresh = tmp.path().join("new-users");
    device.add_to_users_file(&fresh).unwrap();
    assert_eq!(mode(&fresh), 0o600);
}
