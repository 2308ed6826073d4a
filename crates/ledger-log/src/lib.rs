//! The event log: the source of truth everything else is rebuilt from (ARCHITECTURE "Data
//! flow"). Ingest appends encoded `ledger.v1.Event`s; the projector reads them back by offset.
//!
//! [`EventLog`] is the seam between the embedded default ([`EmbeddedLog`]) and Kafka. An append
//! is acknowledged only once durable, and an exact re-delivery (same dedupe key) is answered with
//! the offset it already has instead of being appended again: every acknowledged record is in
//! the log exactly once.

mod embedded;
mod kafka;

use std::ops::Range;

pub use embedded::{EmbeddedLog, EmbeddedLogOptions};
pub use kafka::{
    murmur2, partition_count, partition_for, KafkaLog, KafkaOptions, PartitionReader, ENTRIES_TOPIC,
    EVENTS_TOPIC,
};
pub use rdkafka;

/// One record offered to the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// Partitioning key (the contact key; the WABA id for account events).
    pub key: Vec<u8>,
    /// Identifies the content for exact-duplicate suppression: the same key twice is appended
    /// once. Records with the same event id but different content have different keys and are
    /// both kept; the projector reports the conflict.
    pub dedupe: [u8; 16],
    /// Identifies the event (a hash of its id), when the log should refuse a second record with
    /// the same identity and different content ([`Appended::Conflict`]). The embedded log checks
    /// it; Kafka's has no index to check it in, and its projector reports such conflicts.
    pub identity: Option<[u8; 16]>,
    /// The encoded `ledger.v1.Event`.
    pub payload: Vec<u8>,
    /// An account-wide event (settings) every partition's projector must fold: a partitioned log
    /// writes a copy to each partition; the embedded log has one partition anyway.
    pub broadcast: bool,
}

/// A record read back from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecord {
    pub offset: u64,
    pub payload: Vec<u8>,
}

/// What became of one offered record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// Newly written at this offset.
    New(u64),
    /// Already in the log at this offset (an exact re-delivery).
    Duplicate(u64),
    /// Not appended: a record with the same identity and other content is at this offset.
    Conflict(u64),
}

impl Appended {
    pub fn offset(self) -> u64 {
        match self {
            Appended::New(offset) | Appended::Duplicate(offset) | Appended::Conflict(offset) => offset,
        }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum LogError {
    #[error("event log storage: {0}")]
    Storage(String),
    #[error("event log is closed")]
    Closed,
    #[error("event log unavailable: {0}")]
    Unavailable(String),
}

impl From<rocksdb::Error> for LogError {
    fn from(error: rocksdb::Error) -> Self {
        LogError::Storage(error.into_string())
    }
}

/// The answer to an append: resolves once the records are durable (or the append failed).
#[derive(Debug)]
pub struct AppendTicket(tokio::sync::oneshot::Receiver<Result<Vec<Appended>, LogError>>);

impl AppendTicket {
    /// A ticket and the handle that resolves it.
    pub fn channel() -> (AppendTicket, AppendCompleter) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        (AppendTicket(rx), AppendCompleter(tx))
    }

    /// Waits from async code.
    pub async fn wait(self) -> Result<Vec<Appended>, LogError> {
        self.0.await.unwrap_or(Err(LogError::Closed))
    }

    /// Waits from a plain thread (not from inside an async task).
    pub fn wait_blocking(self) -> Result<Vec<Appended>, LogError> {
        self.0.blocking_recv().unwrap_or(Err(LogError::Closed))
    }
}

/// Resolves an [`AppendTicket`].
#[derive(Debug)]
pub struct AppendCompleter(tokio::sync::oneshot::Sender<Result<Vec<Appended>, LogError>>);

impl AppendCompleter {
    pub fn complete(self, result: Result<Vec<Appended>, LogError>) {
        // The appender may have gone away (client disconnected); the records stay durable.
        let _ = self.0.send(result);
    }
}

/// An append-only, durable, offset-addressed log of records.
pub trait EventLog: Send + Sync + 'static {
    /// Offers records; the ticket resolves once all are durable, in order, with one answer
    /// per record. Concurrent appends may share one sync (group commit).
    fn append(&self, records: Vec<LogRecord>) -> AppendTicket;

    /// Reads up to `max` records with offsets ≥ `from`, in offset order, into `out`.
    fn read(&self, from: u64, max: usize, out: &mut Vec<StoredRecord>) -> Result<(), LogError>;

    /// One past the last durable offset.
    fn end_offset(&self) -> u64;

    /// Blocks until `end_offset() > offset` or `timeout` passes; returns the end offset.
    fn wait_beyond(&self, offset: u64, timeout: std::time::Duration) -> u64;

    /// The offsets records occupy, for progress reports.
    fn range(&self) -> Range<u64> {
        0..self.end_offset()
    }
}
