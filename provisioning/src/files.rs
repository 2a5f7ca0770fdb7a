//! File helpers shared by the network directory and the bundle: every error names its path.
//!
//! Secret files are created with mode 0600 and refused when their group or others may read
//! them. Files that change after creation (the revocation list) are replaced atomically: a
//! reader sees the old list or the new one, never half of either.

use std::fs::{self, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

/// An I/O failure on one file.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct IoError {
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

impl IoError {
    pub(crate) fn at(path: &Path) -> impl FnOnce(io::Error) -> IoError + '_ {
        move |source| IoError {
            path: path.to_owned(),
            source,
        }
    }
}

/// The permission bits of a secret file that others may read.
pub(crate) fn loose_mode(path: &Path) -> Result<Option<u32>, IoError> {
    let mode = fs::metadata(path)
        .map_err(IoError::at(path))?
        .permissions()
        .mode()
        & 0o777;
    Ok((mode & 0o077 != 0).then_some(mode))
}

pub(crate) fn read_text(path: &Path) -> Result<String, IoError> {
    fs::read_to_string(path).map_err(IoError::at(path))
}

/// Creates `path` (which must not exist) with `mode`, writes `contents` and syncs it.
pub(crate) fn create_new(path: &Path, contents: &[u8], mode: u32) -> Result<(), IoError> {
    let write = || -> io::Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(path)?;
        // The umask may have cleared bits of `mode`, never added any; set it exactly.
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.write_all(contents)?;
        file.sync_all()
    };
    write().map_err(IoError::at(path))
}

/// Appends `contents` to `path`, created with mode 0600 if missing, and syncs it.
pub(crate) fn append_private(path: &Path, contents: &[u8]) -> Result<(), IoError> {
    let write = || -> io::Result<()> {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)?;
        file.write_all(contents)?;
        file.sync_all()
    };
    write().map_err(IoError::at(path))
}

/// A secret file: mode 0600, refused if it already exists.
pub(crate) fn create_private(path: &Path, contents: &[u8]) -> Result<(), IoError> {
    create_new(path, contents, 0o600)
}

/// A public file: mode 0644, refused if it already exists.
pub(crate) fn create_public(path: &Path, contents: &[u8]) -> Result<(), IoError> {
    create_new(path, contents, 0o644)
}

/// Replaces `path` with `contents` through a temporary file and a rename.
pub(crate) fn replace(path: &Path, contents: &[u8]) -> Result<(), IoError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let _ = fs::remove_file(&tmp);
    create_public(&tmp, contents)?;
    fs::rename(&tmp, path).map_err(IoError::at(path))?;
    sync_parent(path)
}

/// A directory only its owner may enter (0700), with its parents; an existing (empty)
/// directory is narrowed to 0700 too.
pub(crate) fn create_private_dir(path: &Path) -> Result<(), IoError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .and_then(|()| fs::set_permissions(path, fs::Permissions::from_mode(0o700)))
        .map_err(IoError::at(path))
}

/// Whether `path` is missing or an empty directory: the only places we create a tree in.
pub(crate) fn is_vacant(path: &Path) -> Result<bool, IoError> {
    match fs::read_dir(path) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(true),
        Err(source) => Err(IoError {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Makes a rename or a new file in `path`'s directory durable.
pub(crate) fn sync_parent(path: &Path) -> Result<(), IoError> {
    let parent = path.parent().unwrap_or(Path::new("."));
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    fs::File::open(parent)
        .and_then(|dir| dir.sync_all())
        .map_err(IoError::at(parent))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_private_file_is_0600_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        create_private(&path, b"one").unwrap();
        assert_eq!(loose_mode(&path).unwrap(), None);
        let err = create_private(&path, b"two").unwrap_err();
        assert_eq!(err.source.kind(), io::ErrorKind::AlreadyExists);
        assert!(err.to_string().contains("secret"), "{err}");
        assert_eq!(fs::read(&path).unwrap(), b"one");

        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        assert_eq!(loose_mode(&path).unwrap(), Some(0o640));
    }

    #[test]
    fn replace_swaps_the_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("list");
        replace(&path, b"old").unwrap();
        replace(&path, b"new").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporary left"
        );
    }
}
