//! culao's trust: who belongs to a network and what each box may hold.
//!
//! A network has one **authority**, an ed25519 key kept sealed off the boxes. It signs a
//! **certificate** for every box (its node id, role, site, the scopes it may read, write or
//! only carry, and a validity), and **revocations** that shut a box out. Peers verify each
//! other's certificates against the authority's public key before any sync, and exchange only
//! the scopes both may receive ([`shared_scopes`]).
//!
//! # Map
//!
//! - [`names`]: network names, network ids and sites (DNS labels).
//! - [`policy`]: roles and the standard table of scopes each role reads, writes, carries.
//! - [`cert`]: the certificate encoding and [`Certificate::verify`], giving a [`VerifiedPeer`].
//! - [`authority`]: the authority's signing key and its one-line public form.
//! - [`revocation`]: signed revocations and the mergeable [`RevocationList`].
//! - [`sealed`]: a secret sealed with a passphrase (argon2id, XChaCha20-Poly1305).
//! - [`tls`]: the network's TLS CA and each box's TLS certificate, for HTTPS on a site.
//! - [`network`]: the network directory (`culao network init`) and [`NetworkDir::unlock`].
//! - [`mod@enroll`]: [`enroll()`] a box and [`revoke()`] one (`culao provision node | revoke`).
//! - [`bundle`]: the directory handed to a box, written and loaded (`culao up --bundle`).
//! - [`peers`]: `peers.toml`, where a box listens and whom it dials.
//! - [`device`]: site devices' MQTT credentials (`culao provision device`): a client
//!   certificate naming the device's topic root, and a password the box keeps a digest of.
//!
//! # Invariants
//!
//! - No function reads the clock: callers pass `now_unix_s`, so tests and the ferry box (whose
//!   clock may drift) decide what "now" is.
//! - Every secret (authority key, TLS keys, identity, passphrase) has a `Debug` that prints a
//!   placeholder, and its memory is wiped when dropped where the type allows it.
//! - Every encoding is versioned and has one accepted form; decoders never allocate more
//!   than their input.
//! - Secret files are written with mode 0600 and refused when group or others may read them.
//!
//! # Known limits
//!
//! - `Bundle::load` checks that the TLS files are PEM of the right kind, not that
//!   `tls/node.pem` chains to `tls/ca.pem`: this crate has no X.509 parser; the TLS server
//!   that loads them does that check.
//! - The `issued/` registry assumes one operator at a time; two simultaneous enrolls get
//!   distinct serials, but two simultaneous revokes may each write the list without the
//!   other's revocation (run the second again).
//! - rcgen keeps TLS private keys in buffers it does not wipe on drop; our own copies are
//!   wiped.

pub mod authority;
pub mod bundle;
pub mod cert;
mod codec;
pub mod device;
pub mod enroll;
mod files;
pub mod names;
pub mod network;
pub mod peers;
pub mod policy;
pub mod revocation;
pub mod sealed;
pub mod tls;

pub use authority::{AuthorityKey, AuthorityPublicKey, IssueError};
pub use bundle::{Bundle, BundleError, LoadedBundle, WriteError};
pub use cert::{CertError, Certificate, CertificateBody, VerifiedPeer, shared_scopes};
pub use device::{
    DeviceClass, DeviceCredentials, DeviceError, DeviceName, DeviceRequest, issue_device,
};
pub use enroll::{EnrollError, EnrollRequest, RevokeError, enroll, revoke};
pub use files::IoError;
pub use names::{NameError, NetworkId, NetworkName, Site};
pub use network::{Authority, InitError, NetworkDir, OpenError, RegistryError, UnlockError};
pub use peers::{MalformedPeers, Peer, PeerSpec, PeerSpecError, Peers};
pub use policy::{Access, Policy, Role};
pub use revocation::{Revocation, RevocationError, RevocationList};
pub use sealed::{Passphrase, SealError};
