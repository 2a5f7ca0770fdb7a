//! `culao network init`, `open` and `unlock` on a real directory.

mod common;

use std::fs;

use common::{NOW, mode, network, passphrase, set_mode};
use provisioning::network::{
    AUTHORITY_PUB_FILE, AUTHORITY_SEALED_FILE, ISSUED_DIR, NETWORK_FILE, REVOCATIONS_FILE,
    TLS_CA_FILE,
};
use provisioning::sealed::SealError;
use provisioning::{InitError, NetworkDir, NetworkName, OpenError, Passphrase, UnlockError};

#[test]
fn init_makes_every_file_with_the_secret_one_private() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, authority) = network(tmp.path());

    for name in [
        NETWORK_FILE,
        AUTHORITY_PUB_FILE,
        TLS_CA_FILE,
        REVOCATIONS_FILE,
    ] {
        assert_eq!(mode(&dir.join(name)), 0o644, "{name}");
    }
    assert_eq!(mode(&dir.join(AUTHORITY_SEALED_FILE)), 0o600);
    assert_eq!(mode(&dir), 0o700);
    assert!(dir.join(ISSUED_DIR).is_dir());

    let toml = fs::read_to_string(dir.join(NETWORK_FILE)).unwrap();
    assert!(toml.contains("name = \"phu-quy\""), "{toml}");
    assert!(
        toml.contains(&format!("id = \"{}\"", authority.network().id())),
        "{toml}"
    );
    let public = fs::read_to_string(dir.join(AUTHORITY_PUB_FILE)).unwrap();
    assert_eq!(public.trim(), authority.key().public().to_string());
    let ca = fs::read_to_string(dir.join(TLS_CA_FILE)).unwrap();
    assert!(ca.starts_with("-----BEGIN CERTIFICATE-----"), "{ca}");

    let sealed = fs::read_to_string(dir.join(AUTHORITY_SEALED_FILE)).unwrap();
    assert!(sealed.starts_with("-----BEGIN CULAO SEALED SECRET-----"));
    assert!(!sealed.contains(&hex::encode(authority.key().public().key_bytes())));
}

#[test]
fn open_reads_back_what_init_made() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, authority) = network(tmp.path());
    let opened = NetworkDir::open(&dir).unwrap();
    assert_eq!(opened.name().as_str(), "phu-quy");
    assert_eq!(opened.id(), authority.network().id());
    assert_eq!(opened.public_key(), &authority.key().public());
    assert!(opened.revocations().unwrap().is_empty());
    assert!(opened.issued().unwrap().is_empty());
    let again = opened.unlock(&passphrase()).unwrap();
    assert_eq!(again.key().public(), authority.key().public());
}

#[test]
fn init_refuses_a_directory_that_is_not_empty() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, _) = network(tmp.path());
    let before = fs::read(dir.join(AUTHORITY_SEALED_FILE)).unwrap();
    let name = NetworkName::new("other").unwrap();
    let err = NetworkDir::init(&dir, &name, &passphrase(), NOW).unwrap_err();
    assert!(
        matches!(&err, InitError::NotEmpty { path } if *path == dir),
        "{err}"
    );
    assert_eq!(fs::read(dir.join(AUTHORITY_SEALED_FILE)).unwrap(), before);
}

#[test]
fn init_refuses_a_short_passphrase_and_leaves_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("network");
    let name = NetworkName::new("phu-quy").unwrap();
    let err = NetworkDir::init(&dir, &name, &Passphrase::new("short".to_owned()), NOW).unwrap_err();
    assert!(
        matches!(
            err,
            InitError::Seal {
                source: SealError::WeakPassphrase,
                ..
            }
        ),
        "{err}"
    );
    assert!(!dir.exists());
}

#[test]
fn a_wrong_passphrase_is_told_apart_from_a_damaged_file() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, _) = network(tmp.path());
    let network = NetworkDir::open(&dir).unwrap();
    let sealed = dir.join(AUTHORITY_SEALED_FILE);

    let wrong = network.unlock(&Passphrase::new("sea salt and petrol".to_owned()));
    assert!(
        matches!(&wrong, Err(UnlockError::Sealed { source: SealError::WrongPassphrase, path }) if *path == sealed),
        "{wrong:?}"
    );

    let text = fs::read_to_string(&sealed).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let line = &mut lines[3];
    let flipped = if line.starts_with('0') { "1" } else { "0" };
    line.replace_range(0..1, flipped);
    fs::write(&sealed, lines.join("\n")).unwrap();
    let damaged = network.unlock(&passphrase()).unwrap_err();
    assert!(
        matches!(
            &damaged,
            UnlockError::Sealed {
                source: SealError::Malformed { .. },
                ..
            }
        ),
        "{damaged}"
    );
    assert!(
        damaged.to_string().contains(AUTHORITY_SEALED_FILE),
        "{damaged}"
    );

    fs::write(&sealed, &text[..text.len() / 2]).unwrap();
    let truncated = network.unlock(&passphrase()).unwrap_err();
    assert!(
        matches!(
            &truncated,
            UnlockError::Sealed {
                source: SealError::Malformed { .. },
                ..
            }
        ),
        "{truncated}"
    );
}

#[test]
fn a_sealed_file_others_can_read_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, _) = network(tmp.path());
    let sealed = dir.join(AUTHORITY_SEALED_FILE);
    set_mode(&sealed, 0o644);
    let err = NetworkDir::open(&dir)
        .unwrap()
        .unlock(&passphrase())
        .unwrap_err();
    assert!(
        matches!(err, UnlockError::Permissions { mode: 0o644, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("chmod 600"), "{err}");
}

#[test]
fn another_networks_sealed_keys_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, _) = network(tmp.path());
    let other = tempfile::tempdir().unwrap();
    let (other_dir, _) = network(other.path());
    fs::copy(
        other_dir.join(AUTHORITY_SEALED_FILE),
        dir.join(AUTHORITY_SEALED_FILE),
    )
    .unwrap();
    let err = NetworkDir::open(&dir)
        .unwrap()
        .unlock(&passphrase())
        .unwrap_err();
    assert!(matches!(err, UnlockError::KeyMismatch { .. }), "{err}");
}

#[test]
fn a_damaged_or_mismatched_public_file_names_itself() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, _) = network(tmp.path());

    let toml_path = dir.join(NETWORK_FILE);
    let toml = fs::read_to_string(&toml_path).unwrap();
    fs::write(&toml_path, toml.replace("name =", "nmae =")).unwrap();
    let err = NetworkDir::open(&dir).unwrap_err();
    assert!(
        matches!(&err, OpenError::Malformed { path, .. } if *path == toml_path),
        "{err}"
    );
    fs::write(&toml_path, &toml).unwrap();

    let other = tempfile::tempdir().unwrap();
    let (other_dir, _) = network(other.path());
    fs::copy(
        other_dir.join(AUTHORITY_PUB_FILE),
        dir.join(AUTHORITY_PUB_FILE),
    )
    .unwrap();
    let err = NetworkDir::open(&dir).unwrap_err();
    assert!(matches!(err, OpenError::OtherNetwork { .. }), "{err}");

    fs::remove_file(dir.join(AUTHORITY_PUB_FILE)).unwrap();
    let err = NetworkDir::open(&dir).unwrap_err();
    assert!(err.to_string().contains(AUTHORITY_PUB_FILE), "{err}");
}

#[test]
fn init_in_an_existing_empty_directory_makes_it_private() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("network");
    fs::create_dir(&dir).unwrap();
    set_mode(&dir, 0o755);
    let name = NetworkName::new("phu-quy").unwrap();
    NetworkDir::init(&dir, &name, &passphrase(), NOW).unwrap();
    assert_eq!(mode(&dir), 0o700);
    assert!(NetworkDir::open(&dir).is_ok());
}
