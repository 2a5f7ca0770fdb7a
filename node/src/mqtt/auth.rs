//! The signed preamble and the session's keys: what proves, over a broker, that a peer holds
//! the key of its node id, and what keeps the broker out of the rest of the session.
//!
//! Over iroh the QUIC handshake proves the peer's key and encrypts; a broker does neither
//! (anyone who may publish on a topic can claim any sender, and it reads everything). So the
//! first frame of each side of an MQTT session is an ephemeral X25519 public key and the
//! preamble (`docs/protocol.md` §4.2), preceded by an ed25519 signature, by the sender's node
//! key, over:
//!
//! ```text
//! "culao/mqtt/auth/2" ‖ u32 length ‖ network ‖ signer id (32) ‖ receiver id (32)
//!                     ‖ opener's nonce (u64be) ‖ accepter's nonce (u64be)
//!                     ‖ ephemeral public key (32) ‖ preamble
//! ```
//!
//! Both nonces are fresh random numbers of this session, so a recorded frame cannot be
//! replayed into another session, nor reflected back to its signer, nor moved to another
//! network's topics. The core then admits the preamble as it does over iroh.
//!
//! Every later frame is sealed with ChaCha20-Poly1305 under a key of its direction
//! ([`SessionCipher`]), derived from the two ephemeral keys' X25519 secret and the session's
//! names; the nonce is the frame's number, which the chunk header carries. A party that may
//! publish on the topics can still drop frames or end the session (pings and closes are not
//! sealed), but it can no longer read, alter, replay or inject a sync message.

use chacha20poly1305::aead::Aead as _;
use chacha20poly1305::{ChaCha20Poly1305, Key, KeyInit as _, Nonce};
use crdt_model::NodeId;
use curve25519_dalek::montgomery::MontgomeryPoint;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};

const CONTEXT: &[u8] = b"culao/mqtt/auth/2";
const SIGNATURE_BYTES: usize = 64;
const EPHEMERAL_BYTES: usize = 32;
/// What sealing adds to a frame: the Poly1305 tag.
pub const SEAL_OVERHEAD: usize = 16;

/// Why a peer's signed preamble was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    #[error("signed preamble of {len} bytes is shorter than its signature and key")]
    Short { len: usize },
    #[error("the peer's ephemeral key gives no shared secret (a low-order point)")]
    WeakKey,
    #[error("frame {frame} does not open with the session's key (altered, replayed or forged)")]
    Sealed { frame: u32 },
    #[error("sender {0} is not a valid ed25519 key")]
    BadKey(String),
    #[error("the preamble's signature does not verify with the key of {0}")]
    BadSignature(String),
}

/// Who signs, for whom, in which session.
#[derive(Debug, Clone, Copy)]
pub struct Transcript<'a> {
    pub network: &'a str,
    pub signer: NodeId,
    pub receiver: NodeId,
    pub opener_nonce: u64,
    pub accepter_nonce: u64,
}

impl Transcript<'_> {
    fn message(&self, ephemeral: &[u8; EPHEMERAL_BYTES], preamble: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(CONTEXT.len() + 128 + preamble.len());
        out.extend_from_slice(CONTEXT);
        out.extend_from_slice(&(self.network.len() as u32).to_be_bytes());
        out.extend_from_slice(self.network.as_bytes());
        out.extend_from_slice(self.signer.as_bytes());
        out.extend_from_slice(self.receiver.as_bytes());
        out.extend_from_slice(&self.opener_nonce.to_be_bytes());
        out.extend_from_slice(&self.accepter_nonce.to_be_bytes());
        out.extend_from_slice(ephemeral);
        out.extend_from_slice(preamble);
        out
    }
}

/// This side's ephemeral X25519 key for one session. Its `Debug` prints nothing of it.
pub struct Ephemeral([u8; 32]);

impl std::fmt::Debug for Ephemeral {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ephemeral(…)")
    }
}

impl Ephemeral {
    /// A fresh key from the operating system's randomness.
    pub fn generate() -> Self {
        Self(iroh::SecretKey::generate().to_bytes())
    }

    pub fn public(&self) -> [u8; EPHEMERAL_BYTES] {
        MontgomeryPoint::mul_base_clamped(self.0).to_bytes()
    }
}

/// What a verified first frame carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opening {
    pub ephemeral: [u8; EPHEMERAL_BYTES],
    pub preamble: Vec<u8>,
}

/// Who opened and who accepted a session, and its nonces: what its keys are bound to.
#[derive(Debug, Clone, Copy)]
pub struct SessionNames<'a> {
    pub network: &'a str,
    pub opener: NodeId,
    pub accepter: NodeId,
    pub opener_nonce: u64,
    pub accepter_nonce: u64,
}

/// The keys of one session, one per direction.
pub struct SessionCipher {
    send: ChaCha20Poly1305,
    receive: ChaCha20Poly1305,
}

impl std::fmt::Debug for SessionCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionCipher(…)")
    }
}

impl SessionCipher {
    /// Agrees on the session's keys from this side's ephemeral key and the peer's public one.
    pub fn agree(
        mine: &Ephemeral,
        theirs: &[u8; EPHEMERAL_BYTES],
        names: &SessionNames<'_>,
        i_opened: bool,
    ) -> Result<Self, AuthError> {
        let shared = MontgomeryPoint(*theirs).mul_clamped(mine.0).to_bytes();
        if shared == [0; 32] {
            return Err(AuthError::WeakKey);
        }
        let mut material = Vec::with_capacity(32 + 80 + names.network.len());
        material.extend_from_slice(&shared);
        material.extend_from_slice(names.opener.as_bytes());
        material.extend_from_slice(names.accepter.as_bytes());
        material.extend_from_slice(&names.opener_nonce.to_be_bytes());
        material.extend_from_slice(&names.accepter_nonce.to_be_bytes());
        material.extend_from_slice(names.network.as_bytes());
        let key = |context: &str| {
            let bytes = blake3::derive_key(context, &material);
            ChaCha20Poly1305::new(&Key::from(bytes))
        };
        let opener_to_accepter = key("culao 2026 mqtt session v1 opener to accepter");
        let accepter_to_opener = key("culao 2026 mqtt session v1 accepter to opener");
        Ok(if i_opened {
            Self {
                send: opener_to_accepter,
                receive: accepter_to_opener,
            }
        } else {
            Self {
                send: accepter_to_opener,
                receive: opener_to_accepter,
            }
        })
    }

    /// Seals frame number `frame` (at least 1: frame 0 is the signed opening).
    pub fn seal(&self, frame: u32, plaintext: &[u8]) -> Vec<u8> {
        // Encryption with a valid key and nonce only fails past ChaCha20's 256 GiB limit,
        // which a frame (at most 4 MiB) never reaches.
        self.send
            .encrypt(&nonce(frame), plaintext)
            .unwrap_or_default()
    }

    /// Opens the peer's frame number `frame`.
    pub fn open(&self, frame: u32, sealed: &[u8]) -> Result<Vec<u8>, AuthError> {
        self.receive
            .decrypt(&nonce(frame), sealed)
            .map_err(|_| AuthError::Sealed { frame })
    }
}

/// A direction's key seals each frame number once: the number is the nonce.
fn nonce(frame: u32) -> Nonce {
    let mut bytes = [0u8; 12];
    bytes[8..].copy_from_slice(&frame.to_be_bytes());
    Nonce::from(bytes)
}

/// The box's node key, for signing preambles. Its `Debug` prints nothing of the key.
pub struct NodeKey(SigningKey);

impl std::fmt::Debug for NodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NodeKey(…)")
    }
}

impl NodeKey {
    pub fn from_secret_bytes(secret: &[u8; 32]) -> Self {
        Self(SigningKey::from_bytes(secret))
    }

    /// A signature over `message`, for the broker login token (`login.rs`).
    pub(crate) fn sign_bytes(&self, message: &[u8]) -> [u8; 64] {
        self.0.sign(message).to_bytes()
    }

    /// The first frame of this side: signature, ephemeral public key, then the preamble.
    pub fn sign(
        &self,
        transcript: &Transcript<'_>,
        ephemeral: &[u8; EPHEMERAL_BYTES],
        preamble: &[u8],
    ) -> Vec<u8> {
        let signature = self.0.sign(&transcript.message(ephemeral, preamble));
        let mut out = signature.to_bytes().to_vec();
        out.extend_from_slice(ephemeral);
        out.extend_from_slice(preamble);
        out
    }
}

/// Checks the peer's first frame against its node id; returns its ephemeral key and
/// preamble.
pub fn verify(transcript: &Transcript<'_>, frame: &[u8]) -> Result<Opening, AuthError> {
    if frame.len() < SIGNATURE_BYTES + EPHEMERAL_BYTES {
        return Err(AuthError::Short { len: frame.len() });
    }
    let (signature, rest) = frame.split_at(SIGNATURE_BYTES);
    let (ephemeral, preamble) = rest.split_at(EPHEMERAL_BYTES);
    let mut ephemeral_bytes = [0u8; EPHEMERAL_BYTES];
    ephemeral_bytes.copy_from_slice(ephemeral);
    let key = VerifyingKey::from_bytes(transcript.signer.as_bytes())
        .map_err(|_| AuthError::BadKey(transcript.signer.short()))?;
    let mut bytes = [0u8; SIGNATURE_BYTES];
    bytes.copy_from_slice(signature);
    key.verify_strict(
        &transcript.message(&ephemeral_bytes, preamble),
        &Signature::from_bytes(&bytes),
    )
    .map_err(|_| AuthError::BadSignature(transcript.signer.short()))?;
    Ok(Opening {
        ephemeral: ephemeral_bytes,
        preamble: preamble.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> (NodeKey, NodeId) {
        let key = SigningKey::from_bytes(&[seed; 32]);
        let id = NodeId::from_bytes(key.verifying_key().to_bytes());
        (NodeKey(key), id)
    }

    #[test]
    fn a_signed_preamble_verifies_only_in_its_own_session() {
        let (alice, alice_id) = key(1);
        let (_, bob_id) = key(2);
        let transcript = Transcript {
            network: "open",
            signer: alice_id,
            receiver: bob_id,
            opener_nonce: 10,
            accepter_nonce: 20,
        };
        let ephemeral = Ephemeral::generate().public();
        let frame = alice.sign(&transcript, &ephemeral, b"CLPA-preamble");
        let opening = verify(&transcript, &frame).unwrap();
        assert_eq!(opening.preamble, b"CLPA-preamble");
        assert_eq!(opening.ephemeral, ephemeral);

        let replayed = Transcript {
            accepter_nonce: 21,
            ..transcript
        };
        assert!(matches!(
            verify(&replayed, &frame),
            Err(AuthError::BadSignature(_))
        ));
        let reflected = Transcript {
            signer: bob_id,
            receiver: alice_id,
            ..transcript
        };
        assert!(verify(&reflected, &frame).is_err());
        let other_network = Transcript {
            network: "0011",
            ..transcript
        };
        assert!(verify(&other_network, &frame).is_err());

        let mut tampered = frame.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(verify(&transcript, &tampered).is_err());
        let mut other_key = frame.clone();
        other_key[SIGNATURE_BYTES] ^= 1;
        assert!(
            verify(&transcript, &other_key).is_err(),
            "the ephemeral key is signed"
        );
        assert_eq!(
            verify(&transcript, &frame[..10]),
            Err(AuthError::Short { len: 10 })
        );
    }

    fn names(network: &str) -> SessionNames<'_> {
        SessionNames {
            network,
            opener: NodeId::from_bytes([1; 32]),
            accepter: NodeId::from_bytes([2; 32]),
            opener_nonce: 7,
            accepter_nonce: 9,
        }
    }

    #[test]
    fn both_ends_agree_on_keys_that_seal_each_direction_and_frame_once() {
        let (opener, accepter) = (Ephemeral::generate(), Ephemeral::generate());
        let names = names("open");
        let a = SessionCipher::agree(&opener, &accepter.public(), &names, true).unwrap();
        let b = SessionCipher::agree(&accepter, &opener.public(), &names, false).unwrap();

        let sealed = a.seal(1, b"Hello");
        assert_ne!(&sealed[..5], b"Hello", "the broker cannot read it");
        assert_eq!(sealed.len(), 5 + SEAL_OVERHEAD);
        assert_eq!(b.open(1, &sealed).unwrap(), b"Hello");
        assert_eq!(a.open(7, &b.seal(7, b"Want")).unwrap(), b"Want");

        assert_eq!(
            b.open(2, &sealed),
            Err(AuthError::Sealed { frame: 2 }),
            "replayed"
        );
        assert!(a.open(1, &sealed).is_err(), "reflected to its sender");
        let mut altered = sealed.clone();
        altered[0] ^= 1;
        assert!(b.open(1, &altered).is_err());

        let other_session = SessionNames {
            accepter_nonce: 10,
            ..names
        };
        let c = SessionCipher::agree(&accepter, &opener.public(), &other_session, false).unwrap();
        assert!(c.open(1, &sealed).is_err(), "bound to the session's names");
        assert_eq!(
            SessionCipher::agree(&opener, &[0; 32], &names, true).err(),
            Some(AuthError::WeakKey)
        );
    }
}
