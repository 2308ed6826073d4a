//! The embedded log: a RocksDB database of its own (`<data>/log`) with three column families,
//! `records` (offset → payload), `dedupe` (dedupe key → offset) and `identity` (event identity →
//! dedupe key and offset: a second record of an event with other content is refused).
//!
//! One writer thread owns appends. It takes every request waiting in its queue, assigns
//! offsets, suppresses exact duplicates, and writes them all in one WriteBatch with one WAL
//! sync — group commit: under load, many webhook acknowledgements share one fsync. Tickets
//! resolve only after that write returns. RocksDB's WAL recovery drops a torn tail, and a
//! batch is atomic, so after a crash the log holds exactly the acknowledged prefix plus,
//! possibly, groups whose acknowledgements had not been sent (their senders retry and are
//! answered as duplicates).

use std::collections::HashMap;
use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use rocksdb::{
    BlockBasedOptions, ColumnFamilyDescriptor, Options, ReadOptions, WriteBatch, WriteOptions, DB,
};

use crate::{AppendCompleter, AppendTicket, Appended, EventLog, LogError, LogRecord, StoredRecord};

const RECORDS: &str = "records";
const DEDUPE: &str = "dedupe";
const IDENTITY: &str = "identity";

#[derive(Debug, Clone, Copy)]
pub struct EmbeddedLogOptions {
    /// Sync the WAL before acknowledging. Only benchmarks of the non-durable path turn it off.
    pub sync: bool,
    /// Most records one group commit takes.
    pub max_group_records: usize,
}

impl Default for EmbeddedLogOptions {
    fn default() -> Self {
        EmbeddedLogOptions { sync: true, max_group_records: 16_384 }
    }
}

struct Request {
    records: Vec<LogRecord>,
    done: AppendCompleter,
}

struct Shared {
    db: DB,
    /// One past the last durable offset; waiters on `grown` are woken when it moves.
    end: Mutex<u64>,
    grown: Condvar,
}

/// The embedded, durable event log.
pub struct EmbeddedLog {
    shared: Arc<Shared>,
    requests: Mutex<Option<mpsc::Sender<Request>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for EmbeddedLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedLog").field("end_offset", &self.end_offset()).finish_non_exhaustive()
    }
}

fn db_options() -> Options {
    let mut options = Options::default();
    options.create_if_missing(true);
    options.create_missing_column_families(true);
    options.set_compression_type(rocksdb::DBCompressionType::Lz4);
    options
}

fn column_families() -> Vec<ColumnFamilyDescriptor> {
    let mut dedupe = db_options();
    let mut table = BlockBasedOptions::default();
    // Almost every dedupe lookup is for a key that is not there: a bloom filter answers it.
    table.set_bloom_filter(10.0, false);
    dedupe.set_block_based_table_factory(&table);
    let identity = dedupe.clone();
    vec![
        ColumnFamilyDescriptor::new(RECORDS, db_options()),
        ColumnFamilyDescriptor::new(DEDUPE, dedupe),
        ColumnFamilyDescriptor::new(IDENTITY, identity),
    ]
}

fn offset_key(offset: u64) -> [u8; 8] {
    offset.to_be_bytes()
}

fn decode_offset(bytes: &[u8]) -> Result<u64, LogError> {
    let array: [u8; 8] =
        bytes.try_into().map_err(|_| LogError::Storage(format!("offset of {} bytes", bytes.len())))?;
    Ok(u64::from_be_bytes(array))
}

/// The offset of the record an identity entry (dedupe key, offset) names.
fn decode_identity(value: &[u8]) -> Result<u64, LogError> {
    value
        .get(16..)
        .ok_or_else(|| LogError::Storage(format!("identity entry of {} bytes", value.len())))
        .and_then(decode_offset)
}

impl EmbeddedLog {
    /// Opens (creating if needed) the log at `path` for appending and reading.
    pub fn open(path: &Path, options: EmbeddedLogOptions) -> Result<EmbeddedLog, LogError> {
        let db = DB::open_cf_descriptors(&db_options(), path, column_families())?;
        let log = Self::with_db(db)?;
        let (tx, rx) = mpsc::channel::<Request>();
        let shared = log.shared.clone();
        let writer = std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || write_loop(&shared, &rx, options))
            .map_err(|e| LogError::Storage(e.to_string()))?;
        *log.requests.lock().unwrap_or_else(PoisonError::into_inner) = Some(tx);
        *log.writer.lock().unwrap_or_else(PoisonError::into_inner) = Some(writer);
        Ok(log)
    }

    /// Opens the log for reading only, beside a process that may be appending to it (replay,
    /// audit). It sees the records durable at the moment it opened.
    pub fn open_read_only(path: &Path) -> Result<EmbeddedLog, LogError> {
        let db = DB::open_cf_descriptors_read_only(&db_options(), path, column_families(), false)?;
        Self::with_db(db)
    }

    fn with_db(db: DB) -> Result<EmbeddedLog, LogError> {
        let end = {
            let records = db.cf_handle(RECORDS).ok_or(LogError::Storage("no records family".into()))?;
            let mut iter = db.raw_iterator_cf(records);
            iter.seek_to_last();
            match iter.key() {
                Some(key) => decode_offset(key)? + 1,
                None => {
                    iter.status()?;
                    0
                }
            }
        };
        Ok(EmbeddedLog {
            shared: Arc::new(Shared { db, end: Mutex::new(end), grown: Condvar::new() }),
            requests: Mutex::new(None),
            writer: Mutex::new(None),
        })
    }

    /// Stops accepting appends, lets the writer finish what it took, and waits for it.
    pub fn close(&self) {
        drop(self.requests.lock().unwrap_or_else(PoisonError::into_inner).take());
        if let Some(writer) = self.writer.lock().unwrap_or_else(PoisonError::into_inner).take() {
            let _ = writer.join();
            // Everything appended is durable in the WAL already; flushing it to tables now
            // spares the next open replaying the WAL into memtables (seconds after a large
            // import). A failure here loses nothing: the WAL is still there.
            let db = &self.shared.db;
            let families: Vec<_> =
                [RECORDS, DEDUPE, IDENTITY].iter().filter_map(|n| db.cf_handle(n)).collect();
            if let Err(error) = db.flush_cfs_opt(&families, &rocksdb::FlushOptions::default()) {
                tracing::warn!(%error, "flushing the log's memtables at close");
            }
        }
    }
}

impl Drop for EmbeddedLog {
    fn drop(&mut self) {
        self.close();
    }
}

impl EventLog for EmbeddedLog {
    fn append(&self, records: Vec<LogRecord>) -> AppendTicket {
        let (ticket, done) = AppendTicket::channel();
        let requests = self.requests.lock().unwrap_or_else(PoisonError::into_inner);
        match requests.as_ref() {
            Some(tx) => {
                if let Err(mpsc::SendError(request)) = tx.send(Request { records, done }) {
                    request.done.complete(Err(LogError::Closed));
                }
            }
            None => done.complete(Err(LogError::Closed)),
        }
        ticket
    }

    fn read(&self, from: u64, max: usize, out: &mut Vec<StoredRecord>) -> Result<(), LogError> {
        let db = &self.shared.db;
        let records = db.cf_handle(RECORDS).ok_or(LogError::Storage("no records family".into()))?;
        let end = self.end_offset();
        let mut read_options = ReadOptions::default();
        // Only durable records: a group being written is invisible until its tickets resolve.
        read_options.set_iterate_upper_bound(offset_key(end).to_vec());
        read_options.set_readahead_size(4 << 20);
        read_options.fill_cache(false);
        let mut iter = db.raw_iterator_cf_opt(records, read_options);
        iter.seek(offset_key(from));
        let mut taken = 0;
        while taken < max {
            let (Some(key), Some(value)) = (iter.key(), iter.value()) else { break };
            out.push(StoredRecord { offset: decode_offset(key)?, payload: value.to_vec() });
            taken += 1;
            iter.next();
        }
        iter.status()?;
        Ok(())
    }

    fn end_offset(&self) -> u64 {
        *self.shared.end.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wait_beyond(&self, offset: u64, timeout: Duration) -> u64 {
        let end = self.shared.end.lock().unwrap_or_else(PoisonError::into_inner);
        let (end, _) = self
            .shared
            .grown
            .wait_timeout_while(end, timeout, |end| *end <= offset)
            .unwrap_or_else(PoisonError::into_inner);
        *end
    }
}

fn write_loop(shared: &Shared, requests: &mpsc::Receiver<Request>, options: EmbeddedLogOptions) {
    while let Ok(first) = requests.recv() {
        let mut taken = first.records.len();
        let mut group = vec![first];
        while taken < options.max_group_records {
            match requests.try_recv() {
                Ok(request) => {
                    taken += request.records.len();
                    group.push(request);
                }
                Err(_) => break,
            }
        }
        let start = *shared.end.lock().unwrap_or_else(PoisonError::into_inner);
        match write_group(shared, &group, start, options.sync) {
            Ok((answers, end)) => {
                {
                    let mut durable = shared.end.lock().unwrap_or_else(PoisonError::into_inner);
                    *durable = end;
                }
                shared.grown.notify_all();
                for (request, answer) in group.into_iter().zip(answers) {
                    request.done.complete(Ok(answer));
                }
            }
            Err(error) => {
                tracing::error!(%error, "event log append failed");
                for request in group {
                    request.done.complete(Err(error.clone()));
                }
            }
        }
    }
}

/// Writes one group in one batch; returns each request's answers and the new end offset.
fn write_group(
    shared: &Shared,
    group: &[Request],
    start: u64,
    sync: bool,
) -> Result<(Vec<Vec<Appended>>, u64), LogError> {
    let db = &shared.db;
    let records = db.cf_handle(RECORDS).ok_or(LogError::Storage("no records family".into()))?;
    let dedupe = db.cf_handle(DEDUPE).ok_or(LogError::Storage("no dedupe family".into()))?;
    let identities = db.cf_handle(IDENTITY).ok_or(LogError::Storage("no identity family".into()))?;
    let mut batch = WriteBatch::default();
    let mut in_group: HashMap<[u8; 16], u64> = HashMap::new();
    let mut identities_in_group: HashMap<[u8; 16], u64> = HashMap::new();
    let mut next = start;
    let mut answers = Vec::with_capacity(group.len());
    for request in group {
        let mut answer = Vec::with_capacity(request.records.len());
        for record in &request.records {
            if let Some(offset) = in_group.get(&record.dedupe) {
                answer.push(Appended::Duplicate(*offset));
                continue;
            }
            if let Some(existing) = db.get_pinned_cf(dedupe, record.dedupe)? {
                answer.push(Appended::Duplicate(decode_offset(&existing)?));
                continue;
            }
            if let Some(identity) = record.identity {
                // Not an exact duplicate: a record of the same event is one with other content.
                let held = match identities_in_group.get(&identity) {
                    Some(&offset) => Some(offset),
                    None => db
                        .get_pinned_cf(identities, identity)?
                        .map(|value| decode_identity(&value))
                        .transpose()?,
                };
                if let Some(offset) = held {
                    answer.push(Appended::Conflict(offset));
                    continue;
                }
                let mut value = [0u8; 24];
                value[..16].copy_from_slice(&record.dedupe);
                value[16..].copy_from_slice(&offset_key(next));
                batch.put_cf(identities, identity, value);
                identities_in_group.insert(identity, next);
            }
            batch.put_cf(records, offset_key(next), &record.payload);
            batch.put_cf(dedupe, record.dedupe, offset_key(next));
            in_group.insert(record.dedupe, next);
            answer.push(Appended::New(next));
            next += 1;
        }
        answers.push(answer);
    }
    if next > start {
        let mut write_options = WriteOptions::default();
        write_options.set_sync(sync);
        db.write_opt(batch, &write_options)?;
    }
    Ok((answers, next))
}
