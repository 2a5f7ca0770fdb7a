//! The replica's store on sled: one tree, prefixed keys, atomic batches.
//!
//! | key                                        | value                              |
//! | ------------------------------------------ | ---------------------------------- |
//! | `e` origin(32) scope-len(1) scope seq(8BE) | [`StoredEntry::encode_value`]      |
//! | `h` origin(32) scope-len(1) scope          | seq(8BE) hash(32)                  |
//! | `d` scope-len(1) scope doc(16)             | last full save of an automerge document |
//! | `t` scope-len(1) scope doc(16)             | automerge changes applied since, concatenated |
//! | `w` scope-len(1) scope doc(16)             | hashes (32 each) of waiting changes |
//! | `q` origin(32)                             | empty: the origin is quarantined   |
//!
//! All keys live in one tree so that a [`WriteBatch`] becomes one `sled::Batch`, which sled
//! applies atomically. Durability is separate: [`SledStore::flush`] fsyncs.
//!
//! Appending to a document rewrites only its `t` value, read and extended inside
//! [`Store::commit`]; the replica is the tree's only writer, so nothing changes it in between.
//! A full save replaces `d` and clears `t`.
//!
//! Beside the replica's tree, two small trees hold what the node itself keeps:
//!
//! | tree    | key                          | value                                        |
//! | ------- | ---------------------------- | -------------------------------------------- |
//! | `meta`  | a name (`node`, `trust/...`) | bytes owned by the module that named it      |
//! | `audit` | peer(32) scope               | entries of that scope ever sent to the peer (8BE) |

use std::path::{Path, PathBuf};

use crdt_model::entry::EntryHash;
use crdt_model::ids::{DocId, DocKey, FeedId, NodeId, Scope};
use crdt_model::store::{CorruptEntry, Store, StoredDoc, StoredEntry, Waiting, WriteBatch};
use crdt_model::vector::Head;

/// On-disk layout version, checked at open.
const FORMAT: &[u8] = b"culao-store-2";
/// Layouts this build opens and upgrades in place. Version 1 had no `t` keys; a build that
/// knew only version 1 would ignore them and load stale documents, hence the new version.
const UPGRADES_FROM: &[&[u8]] = &[b"culao-store-1"];

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("cannot open the store at {}: {source}", path.display())]
    Open { path: PathBuf, source: sled::Error },
    #[error("the store at {} has format {found:?}, this build reads {:?}", path.display(), String::from_utf8_lossy(FORMAT))]
    Format { path: PathBuf, found: String },
    #[error("store I/O failed: {0}")]
    Sled(#[from] sled::Error),
    #[error(transparent)]
    CorruptEntry(#[from] CorruptEntry),
    #[error("corrupt store key or value under prefix {prefix:?}")]
    Corrupt { prefix: char },
}

/// The sled-backed store of one box.
#[derive(Debug, Clone)]
pub struct SledStore {
    db: sled::Db,
    tree: sled::Tree,
    meta: sled::Tree,
    audit: sled::Tree,
}

impl SledStore {
    /// Opens (or creates) the store in `dir`, with `cache_bytes` of sled page cache.
    pub fn open(dir: &Path, cache_bytes: u64) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(cache_bytes)
            .flush_every_ms(Some(500))
            .open()
            .map_err(|source| StoreError::Open {
                path: dir.to_owned(),
                source,
            })?;
        let tree = db.open_tree("replica")?;
        match db.get("format")? {
            None => {
                db.insert("format", FORMAT)?;
                db.flush()?;
            }
            Some(found) if found.as_ref() == FORMAT => {}
            Some(found) if UPGRADES_FROM.contains(&found.as_ref()) => {
                db.insert("format", FORMAT)?;
                db.flush()?;
            }
            Some(found) => {
                return Err(StoreError::Format {
                    path: dir.to_owned(),
                    found: String::from_utf8_lossy(&found).into_owned(),
                });
            }
        }
        let meta = db.open_tree("meta")?;
        let audit = db.open_tree("audit")?;
        Ok(Self {
            db,
            tree,
            meta,
            audit,
        })
    }

    pub fn get_meta(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.meta.get(name)?.map(|v| v.to_vec()))
    }

    /// Sets `name`; durable at the next flush.
    pub fn put_meta(&self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        self.meta.insert(name, value)?;
        Ok(())
    }

    /// Adds `entries` to the count of `scope` entries sent to `peer`.
    pub fn add_sent(&self, peer: &NodeId, scope: &Scope, entries: u64) -> Result<(), StoreError> {
        let mut key = peer.as_bytes().to_vec();
        key.extend_from_slice(scope.as_str().as_bytes());
        self.audit.fetch_and_update(key, |old| {
            let held = old
                .and_then(|v| <[u8; 8]>::try_from(v).ok())
                .map_or(0, u64::from_be_bytes);
            Some(held.saturating_add(entries).to_be_bytes().to_vec())
        })?;
        Ok(())
    }

    /// Every (peer, scope, entries sent) ever recorded, in key order.
    pub fn sent_audit(&self) -> Result<Vec<(NodeId, Scope, u64)>, StoreError> {
        let mut out = Vec::new();
        for item in self.audit.iter() {
            let (key, value) = item?;
            let corrupt = || StoreError::Corrupt { prefix: 'a' };
            let peer: [u8; 32] = key
                .get(..32)
                .ok_or_else(corrupt)?
                .try_into()
                .map_err(|_| corrupt())?;
            let scope = std::str::from_utf8(&key[32..]).map_err(|_| corrupt())?;
            let scope = Scope::new(scope).map_err(|_| corrupt())?;
            let count: [u8; 8] = value.as_ref().try_into().map_err(|_| corrupt())?;
            out.push((NodeId::from_bytes(peer), scope, u64::from_be_bytes(count)));
        }
        Ok(out)
    }

    /// Makes everything committed so far durable (fsync). Returns the bytes flushed.
    pub fn flush(&self) -> Result<usize, StoreError> {
        Ok(self.db.flush()?)
    }

    /// Number of documents stored (a scan of the document keys).
    pub fn doc_count(&self) -> usize {
        self.tree.scan_prefix(b"d").count()
    }

    /// Bytes the store takes on disk.
    pub fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }
}

fn feed_key(prefix: u8, feed: &FeedId) -> Vec<u8> {
    let scope = feed.scope.as_str().as_bytes();
    let mut key = Vec::with_capacity(1 + 32 + 1 + scope.len() + 8);
    key.push(prefix);
    key.extend_from_slice(feed.origin.as_bytes());
    key.push(scope.len() as u8);
    key.extend_from_slice(scope);
    key
}

fn entry_key(feed: &FeedId, seq: u64) -> Vec<u8> {
    let mut key = feed_key(b'e', feed);
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

fn doc_key(prefix: u8, key: &DocKey) -> Vec<u8> {
    let scope = key.scope.as_str().as_bytes();
    let mut out = Vec::with_capacity(1 + 1 + scope.len() + 16);
    out.push(prefix);
    out.push(scope.len() as u8);
    out.extend_from_slice(scope);
    out.extend_from_slice(key.doc.as_bytes());
    out
}

fn parse_feed(key: &[u8]) -> Option<(FeedId, &[u8])> {
    let origin: [u8; 32] = key.get(1..33)?.try_into().ok()?;
    let len = *key.get(33)? as usize;
    let scope = std::str::from_utf8(key.get(34..34 + len)?).ok()?;
    let feed = FeedId {
        origin: NodeId::from_bytes(origin),
        scope: Scope::new(scope).ok()?,
    };
    Some((feed, &key[34 + len..]))
}

fn parse_doc_key(key: &[u8]) -> Option<DocKey> {
    let len = *key.get(1)? as usize;
    let scope = Scope::new(std::str::from_utf8(key.get(2..2 + len)?).ok()?).ok()?;
    let doc: [u8; 16] = key.get(2 + len..)?.try_into().ok()?;
    Some(DocKey {
        scope,
        doc: DocId::from_bytes(doc),
    })
}

impl Store for SledStore {
    type Error = StoreError;

    fn heads(&self) -> Result<Vec<(FeedId, Head)>, StoreError> {
        let mut heads = Vec::new();
        for item in self.tree.scan_prefix(b"h") {
            let (key, value) = item?;
            let corrupt = || StoreError::Corrupt { prefix: 'h' };
            let (feed, rest) = parse_feed(&key).ok_or_else(corrupt)?;
            if !rest.is_empty() || value.len() != 40 {
                return Err(corrupt());
            }
            let seq = u64::from_be_bytes(value[..8].try_into().map_err(|_| corrupt())?);
            let hash = EntryHash(value[8..].try_into().map_err(|_| corrupt())?);
            heads.push((feed, Head { seq, hash }));
        }
        Ok(heads)
    }

    fn quarantined(&self) -> Result<Vec<NodeId>, StoreError> {
        let mut origins = Vec::new();
        for item in self.tree.scan_prefix(b"q") {
            let (key, _) = item?;
            let bytes: [u8; 32] = key[1..]
                .try_into()
                .map_err(|_| StoreError::Corrupt { prefix: 'q' })?;
            origins.push(NodeId::from_bytes(bytes));
        }
        Ok(origins)
    }

    fn waiting(&self) -> Result<Vec<(DocKey, Waiting)>, StoreError> {
        let mut out = Vec::new();
        for item in self.tree.scan_prefix(b"w") {
            let (key, value) = item?;
            let corrupt = || StoreError::Corrupt { prefix: 'w' };
            let doc = parse_doc_key(&key).ok_or_else(corrupt)?;
            if value.len() % 32 != 0 {
                return Err(corrupt());
            }
            let hashes = value
                .chunks_exact(32)
                .map(|c| c.try_into().map_err(|_| corrupt()))
                .collect::<Result<Waiting, _>>()?;
            out.push((doc, hashes));
        }
        Ok(out)
    }

    fn doc(&self, key: &DocKey) -> Result<Option<StoredDoc>, StoreError> {
        let saved = self.tree.get(doc_key(b'd', key))?;
        let appended = self.tree.get(doc_key(b't', key))?;
        if saved.is_none() && appended.is_none() {
            return Ok(None);
        }
        Ok(Some(StoredDoc {
            saved: saved.map(|v| v.to_vec()).unwrap_or_default(),
            appended: appended.map(|v| v.to_vec()).unwrap_or_default(),
        }))
    }

    fn entries(
        &self,
        feed: &FeedId,
        from_seq: u64,
        max_count: usize,
    ) -> Result<Vec<StoredEntry>, StoreError> {
        let start = entry_key(feed, from_seq);
        let end = entry_key(feed, u64::MAX);
        let mut out = Vec::new();
        for item in self.tree.range(start..=end).take(max_count) {
            let (key, value) = item?;
            let seq_bytes: [u8; 8] = key[key.len() - 8..]
                .try_into()
                .map_err(|_| StoreError::Corrupt { prefix: 'e' })?;
            let seq = u64::from_be_bytes(seq_bytes);
            out.push(StoredEntry::decode_value(feed, seq, &value)?);
        }
        Ok(out)
    }

    fn commit(&mut self, batch: WriteBatch) -> Result<(), StoreError> {
        let mut out = sled::Batch::default();
        for stored in &batch.entries {
            out.insert(
                entry_key(&stored.entry.feed(), stored.entry.seq),
                stored.encode_value(),
            );
        }
        for (feed, head) in &batch.heads {
            let mut value = Vec::with_capacity(40);
            value.extend_from_slice(&head.seq.to_be_bytes());
            value.extend_from_slice(&head.hash.0);
            out.insert(feed_key(b'h', feed), value);
        }
        for (key, write) in batch.docs {
            let tail = doc_key(b't', &key);
            match write.saved {
                Some(saved) => {
                    out.insert(doc_key(b'd', &key), saved);
                    if write.appended.is_empty() {
                        out.remove(tail);
                    } else {
                        out.insert(tail, write.appended);
                    }
                }
                None if write.appended.is_empty() => {}
                None => {
                    let mut appended = self
                        .tree
                        .get(&tail)?
                        .map(|v| v.to_vec())
                        .unwrap_or_default();
                    appended.extend_from_slice(&write.appended);
                    out.insert(tail, appended);
                }
            }
        }
        for (key, waiting) in &batch.waiting {
            if waiting.is_empty() {
                out.remove(doc_key(b'w', key));
            } else {
                out.insert(doc_key(b'w', key), waiting.concat());
            }
        }
        for origin in &batch.quarantine {
            let mut key = vec![b'q'];
            key.extend_from_slice(origin.as_bytes());
            out.insert(key, Vec::new());
        }
        Ok(self.tree.apply_batch(out)?)
    }
}

#[cfg(test)]
mod tests {
    use automerge::transaction::Transactable;
    use automerge::{ROOT, ReadDoc};
    use crdt_model::{Identity, Replica, Vector};

    use super::*;

    #[test]
    fn a_replica_reopens_with_everything_it_committed() {
        let dir = tempfile::tempdir().unwrap();
        let key = DocKey {
            scope: Scope::new("tickets").unwrap(),
            doc: DocId::from_bytes([3; 16]),
        };
        let identity = Identity::from_secret_bytes([1; 32]);
        {
            let store = SledStore::open(dir.path(), 1 << 20).unwrap();
            let mut replica = Replica::open(identity.clone(), store.clone(), 4).unwrap();
            for n in 0..10_i64 {
                replica.write(&key, 1, |tx| tx.put(ROOT, "n", n)).unwrap();
            }
            replica.commit().unwrap();
            store.flush().unwrap();
        }
        let store = SledStore::open(dir.path(), 1 << 20).unwrap();
        let mut replica = Replica::open(identity, store, 4).unwrap();
        let feed = FeedId {
            origin: replica.node_id(),
            scope: key.scope.clone(),
        };
        assert_eq!(replica.heads().seq(&feed), 10);
        assert!(replica.doc(&key).unwrap().is_some());
        let runs = replica.runs_for(&Vector::new(), |_| true, 1 << 20).unwrap();
        assert_eq!(runs.iter().map(|r| r.items.len()).sum::<usize>(), 10);
    }

    #[test]
    fn a_store_reopened_after_appends_holds_every_edit() {
        let dir = tempfile::tempdir().unwrap();
        let key = DocKey {
            scope: Scope::new("tickets").unwrap(),
            doc: DocId::from_bytes([3; 16]),
        };
        let identity = Identity::from_secret_bytes([1; 32]);
        let mut appended_seen = false;
        {
            let store = SledStore::open(dir.path(), 1 << 20).unwrap();
            let mut replica = Replica::open(identity.clone(), store.clone(), 4).unwrap();
            for n in 0..200_i64 {
                replica
                    .write(&key, 1, |tx| tx.put(ROOT, format!("scan-{n}"), n))
                    .unwrap();
                replica.commit().unwrap();
                let stored = store.doc(&key).unwrap().unwrap();
                appended_seen |= !stored.appended.is_empty();
            }
            store.flush().unwrap();
        }
        assert!(appended_seen, "no edit was appended");

        let store = SledStore::open(dir.path(), 1 << 20).unwrap();
        let mut replica = Replica::open(identity, store, 4).unwrap();
        let doc = replica.doc(&key).unwrap().unwrap();
        assert_eq!(doc.keys(ROOT).count(), 200);
        let last = doc.get(ROOT, "scan-199").unwrap();
        assert_eq!(last.and_then(|(value, _)| value.as_i64()), Some(199));
    }

    #[test]
    fn a_version_1_store_is_upgraded_and_an_unknown_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = sled::open(dir.path()).unwrap();
            db.insert("format", &b"culao-store-1"[..]).unwrap();
            db.flush().unwrap();
        }
        drop(SledStore::open(dir.path(), 1 << 20).unwrap());
        {
            let db = sled::open(dir.path()).unwrap();
            assert_eq!(db.get("format").unwrap().unwrap().as_ref(), FORMAT);
            db.insert("format", &b"culao-store-9"[..]).unwrap();
            db.flush().unwrap();
        }
        let err = SledStore::open(dir.path(), 1 << 20).unwrap_err();
        assert!(matches!(err, StoreError::Format { .. }), "{err}");
    }

    #[test]
    fn an_unopenable_store_names_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, b"x").unwrap();
        let err = SledStore::open(&file, 1 << 20).unwrap_err();
        assert!(err.to_string().contains("not-a-dir"), "{err}");
    }
}
