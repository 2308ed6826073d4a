//! Bounds on the dead letters: refused input is kept for an operator, but a client that sends
//! refused bodies in a loop must not fill the disk. Each source (a route) has a byte cap and
//! all of them together another; a letter over either drops the oldest letters (its source's
//! first) to make room.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use crate::{StoreError, DEAD_LETTERS};

/// Byte caps on the stored dead letters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeadLetterCaps {
    /// All dead letters together.
    pub total_bytes: u64,
    /// The letters of one source (e.g. `POST /v1/webhooks/sinch (sinch)`).
    pub per_source_bytes: u64,
}

impl Default for DeadLetterCaps {
    fn default() -> DeadLetterCaps {
        DeadLetterCaps { total_bytes: 256 * 1024 * 1024, per_source_bytes: 64 * 1024 * 1024 }
    }
}

type Key = [u8; 16];

/// Which letters are stored, oldest first, with their sizes.
#[derive(Debug, Default)]
pub(crate) struct Budget {
    pub(crate) caps: DeadLetterCaps,
    loaded: bool,
    total: u64,
    letters: BTreeMap<Key, (Arc<str>, u64)>,
    by_source: HashMap<Arc<str>, (u64, BTreeSet<Key>)>,
}

impl Budget {
    pub(crate) fn is_loaded(&self) -> bool {
        self.loaded
    }

    /// Reads what is stored (once, at the first letter of a process).
    pub(crate) fn load(
        &mut self,
        stored: impl Iterator<Item = Result<(Box<[u8]>, Box<[u8]>), rocksdb::Error>>,
    ) -> Result<(), StoreError> {
        #[derive(serde::Deserialize)]
        struct SourceOnly {
            source: String,
        }
        for item in stored {
            let (key, value) = item?;
            let Ok(key) = Key::try_from(&key[..]) else { continue };
            let letter: SourceOnly = serde_json::from_slice(&value)
                .map_err(|e| StoreError::Value { family: DEAD_LETTERS, reason: e.to_string() })?;
            self.insert(key, &letter.source, value.len() as u64);
        }
        self.loaded = true;
        Ok(())
    }

    fn source(&self, source: &str) -> Arc<str> {
        self.by_source.get_key_value(source).map_or_else(|| Arc::from(source), |(name, _)| name.clone())
    }

    fn insert(&mut self, key: Key, source: &str, size: u64) {
        let source = self.source(source);
        let (bytes, keys) = self.by_source.entry(source.clone()).or_default();
        *bytes += size;
        keys.insert(key);
        self.total += size;
        self.letters.insert(key, (source, size));
    }

    fn remove(&mut self, key: &Key) {
        let Some((source, size)) = self.letters.remove(key) else { return };
        self.total -= size;
        if let Some((bytes, keys)) = self.by_source.get_mut(&source) {
            *bytes -= size;
            keys.remove(key);
            if keys.is_empty() {
                self.by_source.remove(&source);
            }
        }
    }

    /// The letters to drop so that one of `size` bytes from `source` fits, oldest first: its
    /// source's own while that source is over its cap, then anyone's while all are over theirs.
    pub(crate) fn make_room(&self, source: &str, size: u64) -> Vec<Key> {
        let mut dropped = Vec::new();
        let mut source_bytes = self.by_source.get(source).map_or(0, |(bytes, _)| *bytes);
        let mut total = self.total;
        if let Some((_, keys)) = self.by_source.get(source) {
            for key in keys {
                if source_bytes + size <= self.caps.per_source_bytes {
                    break;
                }
                let freed = self.letters.get(key).map_or(0, |(_, size)| *size);
                source_bytes -= freed;
                total -= freed;
                dropped.push(*key);
            }
        }
        for (key, (_, freed)) in &self.letters {
            if total + size <= self.caps.total_bytes {
                break;
            }
            if !dropped.contains(key) {
                total -= freed;
                dropped.push(*key);
            }
        }
        dropped
    }

    /// Records a write that dropped `dropped` and added `key`.
    pub(crate) fn commit(&mut self, dropped: &[Key], key: Key, source: &str, size: u64) {
        for old in dropped {
            self.remove(old);
        }
        self.insert(key, source, size);
    }
}
