//! The Kafka log (ARCHITECTURE decision 7): the same [`EventLog`] seam as the embedded log, over
//! a partitioned topic.
//!
//! - [`KafkaLog`] is the ingest side. An idempotent producer (`enable.idempotence`, `acks=all`)
//!   keyed by contact with the Java client's partitioner (`murmur2_random`), so a contact's events
//!   stay in one partition in order whichever client wrote them. An append resolves only when every
//!   record's delivery report is in: a webhook is acknowledged once Kafka has it on all in-sync
//!   replicas, and answered with an error (503 upstream) when it does not get there in time.
//! - [`PartitionReader`] reads one partition back by offset, for the projector's start-up replay.
//!
//! Exact-duplicate suppression is not the log's job here: a re-delivered webhook is appended
//! again and the projector recognises its event id (the fold's dedupe), so every append is
//! answered [`Appended::New`] with its partition offset.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use crate::{AppendCompleter, AppendTicket, Appended, EventLog, LogError, LogRecord, StoredRecord};

/// The events topic's default name.
pub const EVENTS_TOPIC: &str = "ledger.events.v1";
/// The derived entries topic's default name.
pub const ENTRIES_TOPIC: &str = "ledger.entries.v1";

/// Where the brokers are and how the producer behaves.
#[derive(Debug, Clone)]
pub struct KafkaOptions {
    /// `bootstrap.servers`.
    pub brokers: String,
    pub topic: String,
    /// How long a record may wait for its delivery report before the append fails (and the
    /// webhook is answered 503 so the provider retries).
    pub delivery_timeout: Duration,
    /// Further librdkafka properties, applied last (e.g. `security.protocol`).
    pub extra: Vec<(String, String)>,
}

impl KafkaOptions {
    pub fn new(brokers: impl Into<String>) -> KafkaOptions {
        KafkaOptions {
            brokers: brokers.into(),
            topic: EVENTS_TOPIC.to_owned(),
            delivery_timeout: Duration::from_secs(10),
            extra: Vec::new(),
        }
    }

    /// The producer settings the log's guarantees rest on.
    pub fn producer_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            // No duplicates or reordering from the producer's own retries; implies acks=all.
            .set("enable.idempotence", "true")
            .set("acks", "all")
            // The Java client's default: both clients put a contact in the same partition.
            .set("partitioner", "murmur2_random")
            // Throughput: webhooks arrive one by one; up to 5 ms of lingering lets concurrent
            // requests share a produce request, LZ4 shrinks the protobuf batches.
            .set("linger.ms", "5")
            .set("batch.size", "1000000")
            .set("compression.type", "lz4")
            .set("message.timeout.ms", self.delivery_timeout.as_millis().to_string());
        for (key, value) in &self.extra {
            config.set(key, value);
        }
        config
    }

    /// Consumer settings shared by the projector and the readers: offsets are the projector's
    /// (stored with its state), never committed automatically.
    pub fn consumer_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("enable.partition.eof", "false")
            .set("fetch.min.bytes", "1")
            .set("fetch.wait.max.ms", "50");
        for (key, value) in &self.extra {
            config.set(key, value);
        }
        config
    }
}

fn unavailable(error: impl std::fmt::Display) -> LogError {
    LogError::Unavailable(error.to_string())
}

/// One append in flight: resolved when its last delivery report arrives.
struct PendingAppend {
    remaining: AtomicUsize,
    answers: Mutex<PendingAnswers>,
}

struct PendingAnswers {
    offsets: Vec<u64>,
    error: Option<LogError>,
    completer: Option<AppendCompleter>,
}

impl PendingAppend {
    fn settle(&self, index: usize, result: Result<u64, LogError>) {
        let mut answers = self.answers.lock().unwrap_or_else(PoisonError::into_inner);
        match result {
            Ok(offset) => answers.offsets[index] = offset,
            Err(error) => {
                answers.error.get_or_insert(error);
            }
        }
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            let Some(completer) = answers.completer.take() else { return };
            let result = match answers.error.take() {
                Some(error) => Err(error),
                None => Ok(answers.offsets.iter().map(|&offset| Appended::New(offset)).collect()),
            };
            completer.complete(result);
        }
    }
}

/// Routes delivery reports back to the append they belong to.
struct DeliveryRouter;

impl ClientContext for DeliveryRouter {}

impl ProducerContext for DeliveryRouter {
    /// The append, and which of its answers this record is.
    type DeliveryOpaque = Box<(Arc<PendingAppend>, usize)>;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: Self::DeliveryOpaque) {
        let (pending, index) = *opaque;
        let answer = match result {
            Ok(message) => Ok(u64::try_from(message.offset()).unwrap_or(0)),
            Err((error, _)) => {
                metrics::counter!("ledger_kafka_delivery_failures_total").increment(1);
                Err(unavailable(format!("kafka delivery failed: {error}")))
            }
        };
        pending.settle(index, answer);
    }
}

/// The ingest side of the Kafka log.
pub struct KafkaLog {
    producer: ThreadedProducer<DeliveryRouter>,
    topic: String,
    partitions: i32,
    /// Where the last append ended, for [`EventLog::end_offset`] (informational in Kafka mode:
    /// offsets are per partition).
    appended: AtomicUsize,
}

impl std::fmt::Debug for KafkaLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaLog").field("topic", &self.topic).field("partitions", &self.partitions).finish()
    }
}

impl KafkaLog {
    /// Connects and learns the topic's partition count (account-wide events go to every
    /// partition, see [`LogRecord::broadcast`]).
    pub fn connect(options: &KafkaOptions) -> Result<KafkaLog, LogError> {
        let producer: ThreadedProducer<DeliveryRouter> =
            options.producer_config().create_with_context(DeliveryRouter).map_err(unavailable)?;
        let partitions = partition_count(producer.client(), &options.topic, Duration::from_secs(10))?;
        Ok(KafkaLog { producer, topic: options.topic.clone(), partitions, appended: AtomicUsize::new(0) })
    }

    pub fn partitions(&self) -> i32 {
        self.partitions
    }

    /// Waits until everything handed to the producer is delivered (or `timeout` passes).
    pub fn flush(&self, timeout: Duration) -> Result<(), LogError> {
        self.producer.flush(timeout).map_err(unavailable)
    }

    fn enqueue(&self, record: &LogRecord, partition: Option<i32>, opaque: Box<(Arc<PendingAppend>, usize)>) {
        let mut base =
            BaseRecord::with_opaque_to(&self.topic, opaque).key(&record.key).payload(&record.payload);
        if let Some(partition) = partition {
            base = base.partition(partition);
        }
        // A full local queue is back-pressure: wait briefly for deliveries to make room rather
        // than failing a webhook the broker could take a moment later.
        let deadline = Instant::now() + Duration::from_secs(1);
        loop {
            match self.producer.send(base) {
                Ok(()) => return,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned))
                    if Instant::now() < deadline =>
                {
                    base = returned;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((error, returned)) => {
                    let (pending, index) = *returned.delivery_opaque;
                    pending.settle(index, Err(unavailable(format!("kafka refused the record: {error}"))));
                    return;
                }
            }
        }
    }
}

impl EventLog for KafkaLog {
    fn append(&self, records: Vec<LogRecord>) -> AppendTicket {
        let (ticket, completer) = AppendTicket::channel();
        // A broadcast record is one answer but a copy per partition.
        let copies: Vec<usize> =
            records.iter().map(|r| if r.broadcast { self.partitions as usize } else { 1 }).collect();
        let total: usize = copies.iter().sum();
        if total == 0 {
            completer.complete(Ok(Vec::new()));
            return ticket;
        }
        let pending = Arc::new(PendingAppend {
            remaining: AtomicUsize::new(total),
            answers: Mutex::new(PendingAnswers {
                offsets: vec![0; records.len()],
                error: None,
                completer: Some(completer),
            }),
        });
        for (index, record) in records.iter().enumerate() {
            if record.broadcast {
                for partition in 0..self.partitions {
                    self.enqueue(record, Some(partition), Box::new((pending.clone(), index)));
                }
            } else {
                self.enqueue(record, None, Box::new((pending.clone(), index)));
            }
        }
        self.appended.fetch_add(records.len(), Ordering::Relaxed);
        ticket
    }

    fn read(&self, _from: u64, _max: usize, _out: &mut Vec<StoredRecord>) -> Result<(), LogError> {
        Err(LogError::Unavailable(
            "the Kafka ingest log is write-only; projectors read partitions with a PartitionReader".into(),
        ))
    }

    fn end_offset(&self) -> u64 {
        self.appended.load(Ordering::Relaxed) as u64
    }

    fn wait_beyond(&self, _offset: u64, timeout: Duration) -> u64 {
        std::thread::sleep(timeout);
        self.end_offset()
    }
}

/// How many partitions `topic` has, from the cluster's metadata.
pub fn partition_count<C: ClientContext>(
    client: &rdkafka::client::Client<C>,
    topic: &str,
    timeout: Duration,
) -> Result<i32, LogError> {
    let deadline = Instant::now() + timeout;
    loop {
        let metadata = client.fetch_metadata(Some(topic), Duration::from_secs(5)).map_err(unavailable)?;
        let found = metadata.topics().iter().find(|t| t.name() == topic);
        if let Some(t) = found {
            if t.error().is_none() && !t.partitions().is_empty() {
                return Ok(t.partitions().len() as i32);
            }
        }
        if Instant::now() >= deadline {
            return Err(LogError::Unavailable(format!("topic {topic} does not exist or has no partitions")));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// One partition of the events topic, read by offset (no consumer group, nothing committed).
pub struct PartitionReader {
    consumer: BaseConsumer,
    topic: String,
    partition: i32,
    /// The offset the consumer will deliver next, when known.
    position: Mutex<Option<u64>>,
}

impl std::fmt::Debug for PartitionReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartitionReader")
            .field("topic", &self.topic)
            .field("partition", &self.partition)
            .finish()
    }
}

impl PartitionReader {
    pub fn open(options: &KafkaOptions, partition: i32) -> Result<PartitionReader, LogError> {
        let mut config = options.consumer_config();
        // Partitions are assigned, never subscribed, and nothing is committed: the group id is
        // only a label librdkafka requires.
        config.set("group.id", format!("ledger-partition-reader-{}", std::process::id()));
        let consumer: BaseConsumer = config.create().map_err(unavailable)?;
        Ok(PartitionReader { consumer, topic: options.topic.clone(), partition, position: Mutex::new(None) })
    }

    fn high_watermark(&self) -> Result<u64, LogError> {
        let (_, high) = self
            .consumer
            .fetch_watermarks(&self.topic, self.partition, Duration::from_secs(10))
            .map_err(unavailable)?;
        Ok(u64::try_from(high).unwrap_or(0))
    }
}

impl EventLog for PartitionReader {
    fn append(&self, _records: Vec<LogRecord>) -> AppendTicket {
        let (ticket, completer) = AppendTicket::channel();
        completer.complete(Err(LogError::Unavailable("a partition reader does not append".into())));
        ticket
    }

    fn read(&self, from: u64, max: usize, out: &mut Vec<StoredRecord>) -> Result<(), LogError> {
        let high = self.high_watermark()?;
        if from >= high || max == 0 {
            return Ok(());
        }
        let mut position = self.position.lock().unwrap_or_else(PoisonError::into_inner);
        if *position != Some(from) {
            let mut assignment = TopicPartitionList::new();
            assignment
                .add_partition_offset(&self.topic, self.partition, Offset::Offset(from as i64))
                .map_err(unavailable)?;
            self.consumer.assign(&assignment).map_err(unavailable)?;
        }
        let wanted = max.min((high - from) as usize);
        let started = out.len();
        let deadline = Instant::now() + Duration::from_secs(30);
        while out.len() - started < wanted {
            match self.consumer.poll(Duration::from_millis(200)) {
                Some(Ok(message)) => {
                    let offset = u64::try_from(message.offset()).unwrap_or(0);
                    *position = Some(offset + 1);
                    out.push(StoredRecord {
                        offset,
                        payload: message.payload().unwrap_or_default().to_vec(),
                    });
                    if offset + 1 >= high {
                        break;
                    }
                }
                Some(Err(error)) => return Err(unavailable(error)),
                None if Instant::now() > deadline => {
                    return Err(LogError::Unavailable(format!(
                        "partition {} stalled below offset {high}",
                        self.partition
                    )))
                }
                None => {}
            }
        }
        Ok(())
    }

    fn end_offset(&self) -> u64 {
        self.high_watermark().unwrap_or(0)
    }

    fn wait_beyond(&self, offset: u64, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            let end = self.end_offset();
            if end > offset || Instant::now() >= deadline {
                return end;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The partition the Java client's default partitioner (and librdkafka's `murmur2_random`) puts
/// a keyed record in: `(murmur2(key) & 0x7fffffff) % partitions`. Query routing uses it to find
/// the partition, hence the member, that owns a contact.
pub fn partition_for(key: &[u8], partitions: i32) -> i32 {
    assert!(partitions > 0, "a topic has at least one partition");
    (murmur2(key) & 0x7fff_ffff) as i32 % partitions
}

/// Kafka's murmur2 (seed 0x9747b28c), as the Java client computes it.
pub fn murmur2(data: &[u8]) -> u32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let mut h: u32 = SEED ^ data.len() as u32;
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Java client's murmur2 values, as librdkafka's own unit test (rdmurmur2.c) lists them.
    #[test]
    fn murmur2_matches_the_java_client() {
        let unaligned = "PreAmbleWillBeRemoved,ThePrePartThatIs";
        let cases: [(&str, u32); 11] = [
            ("kafka", 0xd067cf64),
            ("giberish123456789", 0x8f552b0c),
            ("1234", 0x9fc97b14),
            ("234", 0xe7c009ca),
            ("34", 0x873930da),
            ("4", 0x5a4b5ca1),
            (unaligned, 0x78424f1c),
            (&unaligned[1..], 0x4a62b377),
            (&unaligned[2..], 0xe0e4e09e),
            (&unaligned[3..], 0x62b8b43f),
            ("", 0x106e08d9),
        ];
        for (key, expected) in cases {
            assert_eq!(murmur2(key.as_bytes()), expected, "murmur2({key:?})");
        }
    }

    #[test]
    fn partitions_are_within_range_and_stable() {
        for n in 1..=12 {
            let p = partition_for(b"1234567890/15551234567", n);
            assert!((0..n).contains(&p));
            assert_eq!(p, partition_for(b"1234567890/15551234567", n));
        }
    }
}
