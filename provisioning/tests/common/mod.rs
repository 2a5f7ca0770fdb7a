//! What the scenario tests share: a network made in a temporary directory, and requests.

#![allow(dead_code, reason = "each test file uses a different part")]
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure here is a failed test"
)]

use std::path::{Path, PathBuf};

use provisioning::{Authority, EnrollRequest, NetworkDir, NetworkName, Passphrase, Role, Site};

pub const NOW: i64 = 1_790_000_000;
pub const DAY: i64 = 86_400;
pub const PASSPHRASE: &str = "sea salt and diesel";

pub fn passphrase() -> Passphrase {
    Passphrase::new(PASSPHRASE.to_owned())
}

/// A new network in `<tmp>/network`, unlocked.
pub fn network(tmp: &Path) -> (PathBuf, Authority) {
    let dir = tmp.join("network");
    let name = NetworkName::new("phu-quy").unwrap();
    let network = NetworkDir::init(&dir, &name, &passphrase(), NOW).unwrap();
    let authority = network.unlock(&passphrase()).unwrap();
    (dir, authority)
}

pub fn request(role: Role, site: &str) -> EnrollRequest {
    EnrollRequest {
        role,
        site: Site::new(site).unwrap(),
        validity_days: 30,
        listen: vec!["192.168.10.2:7100".parse().unwrap()],
        peers: Vec::new(),
        now_unix_s: NOW,
    }
}

pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

pub fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The DER inside a PEM block (tests only; the crate itself never parses PEM).
pub fn pem_der(pem: &str) -> Vec<u8> {
    let b64: String = pem
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect::<String>();
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    let mut out = Vec::new();
    for chunk in b64.trim_end_matches('=').as_bytes().chunks(4) {
        let mut acc = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            acc |= value(*c) << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    out
}

pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}
