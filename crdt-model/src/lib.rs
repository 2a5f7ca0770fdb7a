//! The pure core of culao: documents, signed feeds, version vectors and the sync protocol.
//!
//! Nothing here does I/O, reads a clock or draws randomness: time and keys come in as
//! arguments, messages go in and out as values. The node drives this core over sled and iroh;
//! the simulator drives hundreds of replicas over modelled links in one thread.
//!
//! # The map
//!
//! - [`ids`]: node ids (ed25519 keys), document ids (128 bits), scopes.
//! - [`entry`]: feed entries, their hash chain and signatures, node identities.
//! - [`vector`]: version vectors and the digest that proves two nodes hold the same.
//! - [`wire`]: the protocol's messages and their bounded binary encoding
//!   (`docs/protocol.md` specifies every byte).
//! - [`store`]: the storage interface a replica needs, and an in-memory store.
//! - [`replica`]: local writes, verifying and applying peers' runs, choosing runs to send.
//! - [`session`]: one sync session with one peer, as a state machine.
//! - [`json`]: JSON objects in and out of documents.
//! - [`records`]: the island's typed records and their partition rules.
//!
//! # Data model
//!
//! A document is an automerge document addressed by ([`ids::Scope`], [`ids::DocId`]). Each
//! local commit is one [`entry::Entry`] on the writer's feed for that scope: sequence number,
//! hash of the previous entry, document id, automerge change bytes. The origin signs entry
//! hashes; because each hash covers its predecessor, one signature over the last entry of a
//! run vouches for the whole run, which is how a run of a thousand entries carries one
//! signature on the wire (64 bytes) instead of a thousand. Every entry a node writes is
//! signed, so it can cut runs anywhere; a relayer keeps the signature of each run it
//! received and cuts only there. The automerge actor of every change is derived from its
//! origin ([`entry::actor_for`]) and checked on receipt, so a box cannot write changes in
//! another's name.
//!
//! # Invariants
//!
//! - A feed held is always contiguous from 1 and ends at a signed entry.
//! - Nothing of a refused message is applied; a refused message ends its session.
//! - A change whose automerge dependencies are missing is stored (it counts in the vector, so
//!   it is never fetched twice) and applied once they arrive; automerge queues it in the
//!   saved document meanwhile.
//! - Two different signed entries at one (origin, scope, seq) are a fork: the origin is
//!   quarantined, its runs are no longer applied or relayed.
//!
//! # Choices, and why
//!
//! - A custom binary wire format rather than serde: the protocol is meant to be spoken by
//!   other implementations, so every byte is specified and every length bounded.
//! - blake3 for hashes (fast, derive-key domain separation), ed25519 for signatures (the
//!   node id is the iroh endpoint key).
//! - One round in flight per direction: see [`session`].
//!
//! # Known limits
//!
//! - Feeds are never pruned yet; a new box replays every entry instead of starting from a
//!   snapshot (DESIGN.md, Replication).
//! - A fork is detected only when a run overlaps the held head; forks entirely behind the
//!   head are not compared.

pub mod entry;
pub mod ids;
pub mod json;
pub mod records;
pub mod replica;
pub mod session;
pub mod store;
pub mod vector;
pub mod wire;

pub use entry::{Entry, EntryHash, Identity};
pub use ids::{DocId, DocKey, FeedId, NodeId, Scope};
pub use replica::{Replica, ReplicaError};
pub use session::{Session, SessionConfig, SessionError};
pub use store::{MemStore, Store};
pub use vector::Vector;
