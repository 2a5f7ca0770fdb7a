//! The signed preamble: what proves, over a broker, that a peer holds the key of its node id.
//!
//! Over iroh the QUIC handshake proves the peer's key; a broker proves nothing (anyone who
//! may publish on a topic can claim any sender). So the first frame of each side of an MQTT
//! session is the preamble (`docs/protocol.md` §4.2) preceded by an ed25519 signature, by the
//! sender's node key, over:
//!
//! ```text
//! "culao/mqtt/auth/1" ‖ network ‖ signer id (32) ‖ receiver id (32)
//!                     ‖ opener's nonce (u64be) ‖ accepter's nonce (u64be) ‖ preamble
//! ```
//!
//! Both nonces are fresh random numbers of this session, so a recorded frame cannot be
//! replayed into another session, nor reflected back to its signer, nor moved to another
//! network's topics. The core then admits the preamble as it does over iroh.

use crdt_model::NodeId;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};

const CONTEXT: &[u8] = b"culao/mqtt/auth/1";
const SIGNATURE_BYTES: usize = 64;

/// Why a peer's signed preamble was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    #[error("signed preamble of {len} bytes is shorter than its signature")]
    Short { len: usize },
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
    fn message(&self, preamble: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(CONTEXT.len() + 96 + preamble.len());
        out.extend_from_slice(CONTEXT);
        out.extend_from_slice(&(self.network.len() as u32).to_be_bytes());
        out.extend_from_slice(self.network.as_bytes());
        out.extend_from_slice(self.signer.as_bytes());
        out.extend_from_slice(self.receiver.as_bytes());
        out.extend_from_slice(&self.opener_nonce.to_be_bytes());
        out.extend_from_slice(&self.accepter_nonce.to_be_bytes());
        out.extend_from_slice(preamble);
        out
    }
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

    /// The first frame of this side: signature, then the preamble.
    pub fn sign(&self, transcript: &Transcript<'_>, preamble: &[u8]) -> Vec<u8> {
        let signature = self.0.sign(&transcript.message(preamble));
        let mut out = signature.to_bytes().to_vec();
        out.extend_from_slice(preamble);
        out
    }
}

/// Checks the peer's first frame against its node id; returns the preamble it carries.
pub fn verify(transcript: &Transcript<'_>, frame: &[u8]) -> Result<Vec<u8>, AuthError> {
    if frame.len() < SIGNATURE_BYTES {
        return Err(AuthError::Short { len: frame.len() });
    }
    let (signature, preamble) = frame.split_at(SIGNATURE_BYTES);
    let key = VerifyingKey::from_bytes(transcript.signer.as_bytes())
        .map_err(|_| AuthError::BadKey(transcript.signer.short()))?;
    let mut bytes = [0u8; SIGNATURE_BYTES];
    bytes.copy_from_slice(signature);
    key.verify_strict(
        &transcript.message(preamble),
        &Signature::from_bytes(&bytes),
    )
    .map_err(|_| AuthError::BadSignature(transcript.signer.short()))?;
    Ok(preamble.to_vec())
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
        let frame = alice.sign(&transcript, b"CLPA-preamble");
        assert_eq!(verify(&transcript, &frame).unwrap(), b"CLPA-preamble");

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
        assert_eq!(
            verify(&transcript, &frame[..10]),
            Err(AuthError::Short { len: 10 })
        );
    }
}
