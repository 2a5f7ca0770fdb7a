//! Who may connect to the embedded broker, and how a box proves it is one.
//!
//! Two kinds of clients log in:
//!
//! - **Boxes** log in as their node id (64 hex digits) with a *box token* for a password:
//!
//!   ```text
//!   culao-box-1:{unix seconds}:{signature, hex}:{certificate, hex}
//!   signature = ed25519 by the node key over
//!       "culao/mqtt/login/1" ‖ u32 length ‖ network ‖ node id (32) ‖ u32 length ‖ client id
//!                           ‖ unix seconds (i64be)
//!   ```
//!
//!   The broker box checks the certificate against its network's authority and revocations
//!   (as a sync preamble is checked), that it names the node logging in, the signature, and
//!   that the time is within [`LOGIN_SKEW_S`] of its own clock. No list of boxes is kept on
//!   the broker: a box enrolled later logs in at once, a revoked one is refused at once.
//! - **Devices** log in with the name and password `culao provision device` gave them; the
//!   broker's users file holds `NAME blake3:DIGEST` (or, for development, `NAME PASSWORD`).
//!   On an enrolled box devices are admitted on the TLS listener only, where their
//!   certificate holds them to `/tenants/{name}/`; on the plain listener nothing would.
//!
//! The users file is read again at every device login, so a line deleted shuts its device
//! out at its next connection without a restart.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crdt_model::NodeId;
use provisioning::Certificate;
use tracing::warn;

use super::auth::NodeKey;
use crate::trust::TrustHandle;

const CONTEXT: &[u8] = b"culao/mqtt/login/1";
const TOKEN_PREFIX: &str = "culao-box-1:";
/// How far a box token's time may be from the broker's clock, either way.
pub const LOGIN_SKEW_S: i64 = 15 * 60;

/// Why a login was refused; logged by the broker with the client id and user, never the
/// password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LoginError {
    #[error("no user name and this broker admits no anonymous clients")]
    Anonymous,
    #[error("box token is malformed: {0}")]
    Malformed(&'static str),
    #[error("box token is {skew_s} s away from this box's clock (at most {LOGIN_SKEW_S} s)")]
    Stale { skew_s: i64 },
    #[error("box certificate refused: {0}")]
    Certificate(String),
    #[error("box token signature does not verify")]
    Signature,
    #[error("box logins need an enrolled broker box")]
    NotEnrolled,
    #[error("unknown user or wrong password")]
    Password,
    #[error("devices log in over TLS only on an enrolled box")]
    PlainDevice,
    /// The users file could not be read (the message names the file and the line).
    #[error("{0}")]
    Users(String),
}

/// Who was admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admitted {
    Box(NodeId),
    Device(String),
    /// An open (development) broker without a users file.
    Anyone,
}

/// What a box needs to log in to a culao broker.
#[derive(Debug)]
pub struct BoxLogin {
    pub key: NodeKey,
    pub node: NodeId,
    pub certificate: Certificate,
    pub network: String,
}

impl BoxLogin {
    /// The user name and a fresh token for a connection as `client_id` at `now_unix_s`.
    pub fn credentials(&self, client_id: &str, now_unix_s: i64) -> (String, String) {
        let message = signed_message(&self.network, &self.node, client_id, now_unix_s);
        let signature = self.key.sign_bytes(&message);
        let token = format!(
            "{TOKEN_PREFIX}{now_unix_s}:{}:{}",
            hex::encode(signature),
            hex::encode(self.certificate.encode())
        );
        (self.node.to_string(), token)
    }
}

fn signed_message(network: &str, node: &NodeId, client_id: &str, unix_s: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(CONTEXT.len() + 48 + network.len() + client_id.len());
    out.extend_from_slice(CONTEXT);
    out.extend_from_slice(&(network.len() as u32).to_be_bytes());
    out.extend_from_slice(network.as_bytes());
    out.extend_from_slice(node.as_bytes());
    out.extend_from_slice(&(client_id.len() as u32).to_be_bytes());
    out.extend_from_slice(client_id.as_bytes());
    out.extend_from_slice(&unix_s.to_be_bytes());
    out
}

/// Whether `password` is a box token (and `user` should be a node id).
fn is_box_token(password: &str) -> bool {
    password.starts_with(TOKEN_PREFIX)
}

/// Checks a box token against the broker box's trust.
pub fn verify_box(
    trust: &TrustHandle,
    user: &str,
    client_id: &str,
    password: &str,
    now_unix_s: i64,
) -> Result<NodeId, LoginError> {
    let node: NodeId = user
        .parse()
        .map_err(|_| LoginError::Malformed("user is not a node id"))?;
    let rest = password
        .strip_prefix(TOKEN_PREFIX)
        .ok_or(LoginError::Malformed("not a box token"))?;
    let mut parts = rest.splitn(3, ':');
    let (Some(time), Some(signature), Some(certificate)) =
        (parts.next(), parts.next(), parts.next())
    else {
        return Err(LoginError::Malformed("expected time:signature:certificate"));
    };
    let unix_s: i64 = time
        .parse()
        .map_err(|_| LoginError::Malformed("time is not a number"))?;
    let skew_s = unix_s.saturating_sub(now_unix_s).saturating_abs();
    if skew_s > LOGIN_SKEW_S {
        return Err(LoginError::Stale { skew_s });
    }
    let signature: [u8; 64] = hex::decode(signature)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or(LoginError::Malformed("signature is not 64 bytes of hex"))?;
    let certificate = hex::decode(certificate)
        .map_err(|_| LoginError::Malformed("certificate is not hex"))
        .and_then(|bytes| {
            Certificate::decode(&bytes).map_err(|err| LoginError::Certificate(err.to_string()))
        })?;

    let network = {
        let trust = trust.read();
        certificate
            .verify_presented(&node, trust.authority(), now_unix_s, trust.revocations())
            .map_err(|err| LoginError::Certificate(err.to_string()))?;
        trust.me().network.to_string()
    };
    let message = signed_message(&network, &node, client_id, unix_s);
    let key = ed25519_dalek::VerifyingKey::from_bytes(node.as_bytes())
        .map_err(|_| LoginError::Malformed("node id is not an ed25519 key"))?;
    key.verify_strict(&message, &ed25519_dalek::Signature::from_bytes(&signature))
        .map_err(|_| LoginError::Signature)?;
    Ok(node)
}

/// Which listener a client came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    Plain,
    Tls,
}

/// The broker's admission policy for one listener (see the module doc).
#[derive(Debug, Clone)]
pub struct Gatekeeper {
    pub listener: Listener,
    /// The broker box's trust; `None` for an open (development) box.
    pub trust: Option<TrustHandle>,
    pub users_file: Option<PathBuf>,
}

impl Gatekeeper {
    /// Whether a handler is needed at all: an open box without a users file admits anyone.
    pub fn admits_anyone(&self) -> bool {
        self.trust.is_none() && self.users_file.is_none()
    }

    pub fn admit(
        &self,
        client_id: &str,
        user: &str,
        password: &str,
        now_unix_s: i64,
    ) -> Result<Admitted, LoginError> {
        if self.admits_anyone() {
            return Ok(Admitted::Anyone);
        }
        if user.is_empty() {
            return Err(LoginError::Anonymous);
        }
        if is_box_token(password) {
            let trust = self.trust.as_ref().ok_or(LoginError::NotEnrolled)?;
            return verify_box(trust, user, client_id, password, now_unix_s).map(Admitted::Box);
        }
        if self.trust.is_some() && self.listener == Listener::Plain {
            return Err(LoginError::PlainDevice);
        }
        let path = self.users_file.as_ref().ok_or(LoginError::Password)?;
        let users = read_users(path).map_err(|err| LoginError::Users(err.to_string()))?;
        let matches = users.get(user).is_some_and(|stored| {
            provisioning::device::password_matches(stored, password)
                .unwrap_or_else(|| constant_time_eq(stored.as_bytes(), password.as_bytes()))
        });
        if matches {
            Ok(Admitted::Device(user.to_owned()))
        } else {
            Err(LoginError::Password)
        }
    }

    /// The check rumqttd calls; logs each refusal on culao's target.
    pub fn check(&self, client_id: &str, user: &str, password: &str) -> bool {
        match self.admit(client_id, user, password, now_unix_s()) {
            Ok(_) => true,
            Err(err) => {
                warn!(%client_id, %user, listener = ?self.listener, cause = %err, "MQTT login refused");
                false
            }
        }
    }
}

fn now_unix_s() -> i64 {
    chrono::Utc::now().timestamp()
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Why the users file could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UsersError {
    #[error("cannot read the MQTT users file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("MQTT users file {}, line {line}: expected `USER PASSWORD` or `USER blake3:DIGEST`", path.display())]
    Line { path: PathBuf, line: usize },
}

/// Reads the users file: one `USER PASSWORD` or `USER blake3:DIGEST` per line; blank lines
/// and `#` comments skipped.
pub fn read_users(path: &Path) -> Result<HashMap<String, String>, UsersError> {
    let text = std::fs::read_to_string(path).map_err(|source| UsersError::Read {
        path: path.to_owned(),
        source,
    })?;
    let mut users = HashMap::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some(user), Some(password), None) => {
                users.insert(user.to_owned(), password.to_owned());
            }
            _ => {
                return Err(UsersError::Line {
                    path: path.to_owned(),
                    line: index + 1,
                });
            }
        }
    }
    Ok(users)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_users_file_names_its_bad_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        std::fs::write(&path, "# devices\ngate1 s3cret\n\nreader2 blake3:00\n").unwrap();
        let users = read_users(&path).unwrap();
        assert_eq!(users.get("gate1").map(String::as_str), Some("s3cret"));
        assert_eq!(users.len(), 2);
        std::fs::write(&path, "gate1 s3cret\nno-password\n").unwrap();
        assert!(matches!(
            read_users(&path),
            Err(UsersError::Line { line: 2, .. })
        ));
    }

    #[test]
    fn an_open_broker_checks_its_users_file_on_every_login() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users");
        let digest = provisioning::device::password_digest("pw-gate1");
        std::fs::write(&path, format!("gate1 {digest}\ndev plain\n")).unwrap();
        let gate = Gatekeeper {
            listener: Listener::Plain,
            trust: None,
            users_file: Some(path.clone()),
        };
        assert_eq!(
            gate.admit("c", "gate1", "pw-gate1", 0),
            Ok(Admitted::Device("gate1".into()))
        );
        assert_eq!(
            gate.admit("c", "dev", "plain", 0),
            Ok(Admitted::Device("dev".into()))
        );
        assert_eq!(
            gate.admit("c", "gate1", "wrong", 0),
            Err(LoginError::Password)
        );
        assert_eq!(gate.admit("c", "", "", 0), Err(LoginError::Anonymous));
        assert_eq!(
            gate.admit("c", "ab", "culao-box-1:0:00:00", 0),
            Err(LoginError::NotEnrolled)
        );
        std::fs::write(&path, "dev plain\n").unwrap();
        assert_eq!(
            gate.admit("c", "gate1", "pw-gate1", 0),
            Err(LoginError::Password)
        );

        let anyone = Gatekeeper {
            users_file: None,
            ..gate
        };
        assert_eq!(anyone.admit("c", "", "", 0), Ok(Admitted::Anyone));
    }

    mod box_tokens {
        use crdt_model::Identity;
        use provisioning::{
            AuthorityKey, CertificateBody, NetworkId, Policy, RevocationList, Role,
        };

        use super::*;
        use crate::trust::Trust;

        const NOW: i64 = 1_800_000_000;

        fn authority(seed: u8) -> AuthorityKey {
            AuthorityKey::from_secret_bytes(NetworkId::from_bytes([seed; 16]), [seed; 32])
        }

        fn enrolled(authority: &AuthorityKey, seed: u8, role: Role) -> (BoxLogin, Certificate) {
            let node = Identity::from_secret_bytes([seed; 32]).node_id();
            let access = Policy::standard().access(role);
            let certificate = authority
                .issue(CertificateBody {
                    network: authority.network(),
                    node,
                    role,
                    site: "port".parse().unwrap(),
                    read: access.read,
                    write: access.write,
                    carry: access.carry,
                    not_before_unix_s: NOW - 10,
                    not_after_unix_s: NOW + 86_400,
                    serial: u64::from(seed),
                })
                .unwrap();
            let login = BoxLogin {
                key: NodeKey::from_secret_bytes(&[seed; 32]),
                node,
                certificate: certificate.clone(),
                network: authority.network().to_string(),
            };
            (login, certificate)
        }

        fn broker(authority: &AuthorityKey) -> TrustHandle {
            let (_, own) = enrolled(authority, 1, Role::Port);
            TrustHandle::new(
                Trust::new(authority.public(), own, RevocationList::new(), NOW).unwrap(),
            )
        }

        #[test]
        fn a_box_logs_in_with_its_token_and_only_as_itself_now() {
            let network = authority(7);
            let trust = broker(&network);
            let (resort, _) = enrolled(&network, 2, Role::Resort);
            let (user, token) = resort.credentials("culao-abc", NOW);
            assert_eq!(
                verify_box(&trust, &user, "culao-abc", &token, NOW),
                Ok(resort.node)
            );
            assert_eq!(
                verify_box(&trust, &user, "culao-abc", &token, NOW + LOGIN_SKEW_S),
                Ok(resort.node)
            );

            assert_eq!(
                verify_box(&trust, &user, "culao-xyz", &token, NOW),
                Err(LoginError::Signature),
                "bound to its client id"
            );
            assert!(matches!(
                verify_box(&trust, &user, "culao-abc", &token, NOW + LOGIN_SKEW_S + 1),
                Err(LoginError::Stale { .. })
            ));
            let (other, _) = enrolled(&network, 3, Role::Clinic);
            assert!(
                matches!(
                    verify_box(&trust, &other.node.to_string(), "culao-abc", &token, NOW),
                    Err(LoginError::Certificate(_))
                ),
                "another node's name with this certificate"
            );
            assert!(matches!(
                verify_box(&trust, &user, "culao-abc", "culao-box-1:1:zz:00", NOW),
                Err(LoginError::Malformed(_) | LoginError::Stale { .. })
            ));
        }

        #[test]
        fn a_foreign_or_revoked_box_is_refused() {
            let network = authority(7);
            let trust = broker(&network);
            let (stranger, _) = enrolled(&authority(8), 2, Role::Resort);
            let (user, token) = stranger.credentials("c", NOW);
            assert!(matches!(
                verify_box(&trust, &user, "c", &token, NOW),
                Err(LoginError::Certificate(_))
            ));

            let (resort, certificate) = enrolled(&network, 2, Role::Resort);
            let mut list = RevocationList::new();
            list.insert(
                &network.public(),
                network.revoke(resort.node, certificate.body().serial, NOW),
            )
            .unwrap();
            trust.write().learn_revocations(&list).unwrap();
            let (user, token) = resort.credentials("c", NOW);
            assert!(matches!(
                verify_box(&trust, &user, "c", &token, NOW),
                Err(LoginError::Certificate(_))
            ));
        }

        #[test]
        fn an_enrolled_broker_admits_devices_over_tls_only() {
            let network = authority(7);
            let dir = tempfile::tempdir().unwrap();
            let users = dir.path().join("users");
            let digest = provisioning::device::password_digest("pw");
            std::fs::write(&users, format!("gate1 {digest}\n")).unwrap();
            let tls = Gatekeeper {
                listener: Listener::Tls,
                trust: Some(broker(&network)),
                users_file: Some(users),
            };
            let plain = Gatekeeper {
                listener: Listener::Plain,
                ..tls.clone()
            };
            assert_eq!(
                tls.admit("c", "gate1", "pw", NOW),
                Ok(Admitted::Device("gate1".into()))
            );
            assert_eq!(
                plain.admit("c", "gate1", "pw", NOW),
                Err(LoginError::PlainDevice)
            );
            assert_eq!(plain.admit("c", "", "", NOW), Err(LoginError::Anonymous));
            let (resort, _) = enrolled(&network, 2, Role::Resort);
            let (user, token) = resort.credentials("c", NOW);
            assert_eq!(
                plain.admit("c", &user, &token, NOW),
                Ok(Admitted::Box(resort.node))
            );
            assert_eq!(
                tls.admit("c", &user, &token, NOW),
                Ok(Admitted::Box(resort.node))
            );
        }
    }
}
