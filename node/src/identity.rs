//! The box's identity key on disk: `identity.key` in the data directory, mode 0600.
//!
//! The file holds one line, `culao-identity-v1 <64 hex digits>`. The key is made from the
//! operating system's randomness the first time a box starts; after that the file is the box.
//! Copying it to a second machine makes two boxes write the same feeds, which every peer
//! detects as a fork (DESIGN.md, Replication): a replaced box gets a new key instead.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use crdt_model::Identity;

pub const IDENTITY_FILE: &str = "identity.key";
const HEADER: &str = "culao-identity-v1";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not a culao identity file (expected `{HEADER} <64 hex digits>`)", path.display())]
    Malformed { path: PathBuf },
    #[error("{} is readable by others (mode {mode:o}); run `chmod 600` on it", path.display())]
    Permissions { path: PathBuf, mode: u32 },
}

/// Loads the identity in `data_dir`, creating it (and the directory) if there is none.
pub fn load_or_create(data_dir: &Path) -> Result<Identity, IdentityError> {
    let path = data_dir.join(IDENTITY_FILE);
    if path.exists() {
        return load(&path);
    }
    fs::create_dir_all(data_dir).map_err(|source| IdentityError::Write {
        path: data_dir.to_owned(),
        source,
    })?;
    let identity = Identity::from_secret_bytes(iroh::SecretKey::generate().to_bytes());
    let line = format!("{HEADER} {}\n", hex::encode(identity.secret_bytes()));
    let write = |path: &Path| -> std::io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        file.write_all(line.as_bytes())?;
        file.sync_all()
    };
    write(&path).map_err(|source| IdentityError::Write {
        path: path.clone(),
        source,
    })?;
    Ok(identity)
}

fn load(path: &Path) -> Result<Identity, IdentityError> {
    let read_err = |source| IdentityError::Read {
        path: path.to_owned(),
        source,
    };
    let mode = fs::metadata(path).map_err(read_err)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(IdentityError::Permissions {
            path: path.to_owned(),
            mode,
        });
    }
    let text = fs::read_to_string(path).map_err(read_err)?;
    let malformed = || IdentityError::Malformed {
        path: path.to_owned(),
    };
    let secret = text
        .trim()
        .strip_prefix(HEADER)
        .ok_or_else(malformed)?
        .trim();
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(secret, &mut bytes).map_err(|_| malformed())?;
    Ok(Identity::from_secret_bytes(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_identity_is_created_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path()).unwrap();
        let mode = fs::metadata(dir.path().join(IDENTITY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            load_or_create(dir.path()).unwrap().node_id(),
            first.node_id()
        );
    }

    #[test]
    fn a_readable_or_corrupt_key_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        load_or_create(dir.path()).unwrap();
        let path = dir.path().join(IDENTITY_FILE);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            load_or_create(dir.path()),
            Err(IdentityError::Permissions { .. })
        ));
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        fs::write(&path, "nonsense").unwrap();
        assert!(matches!(
            load_or_create(dir.path()),
            Err(IdentityError::Malformed { .. })
        ));
    }
}
