//! A projector as a Kafka consumer-group member (ARCHITECTURE decisions 5 and 7).
//!
//! Each partition it owns has its own RocksDB under `data_dir/partition-N` and its own
//! [`Projector`]; the partition's position is the store's offset, written in the same WriteBatch as
//! the state. Kafka's committed offsets are advisory (lag monitoring): on assignment the consumer is
//! positioned at the offsets the stores hold, whatever the group committed.
//!
//! - Assignment: the partition's store is opened (created empty if the partition never lived
//!   here) and the in-memory fold state is rebuilt by replaying the partition's prefix up to the
//!   stored offset; a partition with no local state is rebuilt from offset 0 — the same replay,
//!   written — with progress logged.
//! - Consumption is batched: up to `batch_size` records per poll round, projected per partition in
//!   one write each.
//! - Revocation happens inside `poll`, between batches: nothing is half-written. Records fetched
//!   for a revoked partition but not yet projected are abandoned; the next owner starts from the
//!   stored offset.
//! - Derived entries go to the entries topic keyed by WABA, before the write that moves the offset
//!   past them (at least once; consumers deduplicate by entry id, which is deterministic).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use ledger_core::{Entry, Ledger, LedgerConfig};
use ledger_log::{KafkaOptions, PartitionReader, StoredRecord};
use ledger_store::Store;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaResult;
use rdkafka::message::{Message, OwnedHeaders};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use crate::{EntryPricing, Projector, ProjectorError};

/// Default of [`GroupOptions::max_poll_interval`]: loading a partition (replaying its prefix)
/// happens between polls and takes minutes for a large one.
pub const DEFAULT_MAX_POLL_INTERVAL: Duration = Duration::from_secs(600);

/// The store offset name of a partition's projector.
pub const PARTITION_CONSUMER: &str = "kafka";

#[derive(Debug, Clone)]
pub struct GroupOptions {
    pub kafka: KafkaOptions,
    /// `group.id` of the projector group.
    pub group_id: String,
    /// Where the per-partition stores live.
    pub data_dir: PathBuf,
    /// Derived entries are published here when set (default `ledger.entries.v1`).
    pub entries_topic: Option<String>,
    /// Most records taken per poll round.
    pub batch_size: usize,
    pub ledger: LedgerConfig,
    /// How long the group waits for a silent member before giving its partitions to the others
    /// (`session.timeout.ms`; librdkafka's default, 45 s, when unset). Shorter means faster
    /// failover after a crash, longer tolerates longer pauses.
    pub session_timeout: Option<Duration>,
    /// Longest pause between polls before the member is considered stuck and leaves the group;
    /// also the rebalance timeout it announces (how long the coordinator waits for members to
    /// rejoin, which some brokers apply to crashed members too). Loading a large partition
    /// happens between polls, so this bounds the partition size one member can take over.
    pub max_poll_interval: Duration,
}

impl GroupOptions {
    /// Options with the defaults: no entries topic, 8,192 records per round, librdkafka's
    /// session timeout, [`DEFAULT_MAX_POLL_INTERVAL`].
    pub fn new(
        kafka: KafkaOptions,
        group_id: impl Into<String>,
        data_dir: impl Into<PathBuf>,
    ) -> GroupOptions {
        GroupOptions {
            kafka,
            group_id: group_id.into(),
            data_dir: data_dir.into(),
            entries_topic: None,
            batch_size: 8192,
            ledger: LedgerConfig::default(),
            session_timeout: None,
            max_poll_interval: DEFAULT_MAX_POLL_INTERVAL,
        }
    }
}

/// Makes each partition's pricing (see [`GroupMember::join`]).
pub type PricingFactory = Box<dyn Fn() -> Box<dyn EntryPricing> + Send>;

/// The store of one partition under a data directory.
pub fn partition_path(data_dir: &Path, partition: i32) -> PathBuf {
    data_dir.join(format!("partition-{partition}"))
}

/// What queries need of a partition this member owns.
#[derive(Clone)]
pub struct OwnedPartition {
    pub store: Arc<Store>,
    pub ledger: Arc<RwLock<Ledger>>,
}

impl std::fmt::Debug for OwnedPartition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnedPartition").finish_non_exhaustive()
    }
}

/// The partitions a member owns right now, shared with its query API.
pub type Ownership = Arc<RwLock<BTreeMap<i32, OwnedPartition>>>;

/// What the rebalance callback (run inside `poll`) leaves for the loop.
#[derive(Default)]
struct RebalanceLog {
    /// Bumped on every rebalance: records polled under an older generation are abandoned.
    generation: u64,
    /// The latest full assignment (eager protocol: each Assign lists all of it).
    assignment: Option<Vec<i32>>,
    /// Partitions were revoked since the loop last looked.
    revoked: bool,
}

struct GroupContext {
    data_dir: PathBuf,
    topic: String,
    /// Every partition store this member has opened. Kept open for the process's life: a
    /// released partition's store may still be referenced (a query in flight), and RocksDB's lock
    /// would refuse a second open if the partition came back meanwhile.
    opened: Mutex<HashMap<i32, Arc<Store>>>,
    /// Partitions whose projector is already loaded: their position is the projector's.
    positions: Mutex<HashMap<i32, u64>>,
    log: Mutex<RebalanceLog>,
    failure: Mutex<Option<String>>,
}

impl ClientContext for GroupContext {}

impl ConsumerContext for GroupContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let mut log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        log.generation += 1;
        if let Rebalance::Revoke(_) = rebalance {
            log.revoked = true;
        }
    }

    /// Positions each assigned partition at its store's offset: the state decides, not the
    /// group's committed offsets.
    fn post_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Assign(list) = rebalance else { return };
        let mut positioned = TopicPartitionList::new();
        let mut assignment = Vec::new();
        for element in list.elements() {
            let partition = element.partition();
            match self.position_of(partition) {
                Ok(offset) => {
                    let _ = positioned.add_partition_offset(
                        &self.topic,
                        partition,
                        Offset::Offset(offset as i64),
                    );
                    assignment.push(partition);
                }
                Err(error) => {
                    self.failure.lock().unwrap_or_else(PoisonError::into_inner).get_or_insert(error);
                }
            }
        }
        self.log.lock().unwrap_or_else(PoisonError::into_inner).assignment = Some(assignment);
        if let Err(error) = consumer.assign(&positioned) {
            self.failure
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get_or_insert(format!("positioning assigned partitions: {error}"));
        }
    }

    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        if let Err(error) = result {
            // Advisory only: the stored offsets are what resumption uses.
            tracing::debug!(%error, "advisory offset commit failed");
        }
    }
}

impl GroupContext {
    /// The partition's store, opened once per process (see `opened`).
    fn store_of(&self, partition: i32) -> Result<Arc<Store>, String> {
        let mut opened = self.opened.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(store) = opened.get(&partition) {
            return Ok(store.clone());
        }
        let path = partition_path(&self.data_dir, partition);
        let store = Arc::new(
            Store::open(&path)
                .map_err(|e| format!("opening {} for partition {partition}: {e}", path.display()))?,
        );
        opened.insert(partition, store.clone());
        Ok(store)
    }

    fn position_of(&self, partition: i32) -> Result<u64, String> {
        if let Some(&position) = self.positions.lock().unwrap_or_else(PoisonError::into_inner).get(&partition)
        {
            return Ok(position);
        }
        let store = self.store_of(partition)?;
        store.offset(PARTITION_CONSUMER).map_err(|e| format!("reading partition {partition}'s offset: {e}"))
    }
}

/// Loaded partitions: the projector and what it was caught up to at assignment (for progress).
struct Loaded {
    projector: Projector,
    owned: OwnedPartition,
    catch_up_to: u64,
    last_report: Instant,
}

/// A running member of the projector group.
pub struct GroupMember {
    consumer: BaseConsumer<GroupContext>,
    options: GroupOptions,
    pricing: PricingFactory,
    entries: Option<ThreadedProducer<EntryDeliveries>>,
    loaded: HashMap<i32, Loaded>,
    ownership: Ownership,
}

impl std::fmt::Debug for GroupMember {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupMember").field("group", &self.options.group_id).finish_non_exhaustive()
    }
}

/// What one poll round did, for tests and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoundReport {
    pub records: usize,
    pub entries: usize,
    pub abandoned: usize,
}

impl GroupMember {
    /// Joins the group; `pricing` makes each partition's pricing (tier state is per partition
    /// replay, like the fold's).
    pub fn join(options: GroupOptions, pricing: PricingFactory) -> Result<GroupMember, ProjectorError> {
        std::fs::create_dir_all(&options.data_dir)
            .map_err(|e| ProjectorError::Group(format!("creating {}: {e}", options.data_dir.display())))?;
        let context = GroupContext {
            data_dir: options.data_dir.clone(),
            topic: options.kafka.topic.clone(),
            opened: Mutex::default(),
            positions: Mutex::default(),
            log: Mutex::default(),
            failure: Mutex::default(),
        };
        let mut config = options.kafka.consumer_config();
        config.set("group.id", &options.group_id);
        config.set("max.poll.interval.ms", options.max_poll_interval.as_millis().to_string());
        if let Some(timeout) = options.session_timeout {
            config.set("session.timeout.ms", timeout.as_millis().to_string());
        }
        let consumer: BaseConsumer<GroupContext> =
            config.create_with_context(context).map_err(kafka_error)?;
        consumer.subscribe(&[options.kafka.topic.as_str()]).map_err(kafka_error)?;
        let entries = match &options.entries_topic {
            Some(_) => Some(
                options
                    .kafka
                    .producer_config()
                    .create_with_context(EntryDeliveries::default())
                    .map_err(kafka_error)?,
            ),
            None => None,
        };
        Ok(GroupMember {
            consumer,
            options,
            pricing,
            entries,
            loaded: HashMap::new(),
            ownership: Ownership::default(),
        })
    }

    /// The partitions this member owns, for its query API.
    pub fn ownership(&self) -> Ownership {
        self.ownership.clone()
    }

    /// Polls and projects until `stop` is set.
    pub fn run(&mut self, stop: &AtomicBool) -> Result<(), ProjectorError> {
        while !stop.load(Ordering::SeqCst) {
            self.round(Duration::from_millis(100))?;
        }
        Ok(())
    }

    /// One poll round: collect up to `batch_size` records (waiting at most `wait` for the
    /// first), apply rebalances, project per partition.
    pub fn round(&mut self, wait: Duration) -> Result<RoundReport, ProjectorError> {
        let mut report = RoundReport::default();
        let generation = self.generation();
        let mut polled: BTreeMap<i32, Vec<StoredRecord>> = BTreeMap::new();
        let mut count = 0;
        let mut timeout = wait;
        while count < self.options.batch_size {
            match self.consumer.poll(timeout) {
                Some(Ok(message)) => {
                    let record = StoredRecord {
                        offset: u64::try_from(message.offset()).unwrap_or(0),
                        payload: message.payload().unwrap_or_default().to_vec(),
                    };
                    polled.entry(message.partition()).or_default().push(record);
                    count += 1;
                    timeout = Duration::ZERO;
                }
                Some(Err(error)) => {
                    tracing::warn!(%error, "kafka consumer error");
                    break;
                }
                None => break,
            }
        }
        if let Some(failure) =
            self.consumer.context().failure.lock().unwrap_or_else(PoisonError::into_inner).take()
        {
            return Err(ProjectorError::Group(failure));
        }
        let rebalanced = self.generation() != generation;
        if rebalanced {
            // A rebalance ran inside poll: what was fetched may belong to partitions now
            // elsewhere. Abandon it all; once the assignment is applied the consumer is pointed
            // back at the stored positions, so nothing abandoned is skipped.
            report.abandoned = count;
            polled.clear();
        }
        self.apply_rebalances()?;
        if rebalanced {
            self.reposition()?;
        }

        let mut commits = TopicPartitionList::new();
        for (partition, records) in polled {
            let Some(loaded) = self.loaded.get_mut(&partition) else {
                report.abandoned += records.len();
                continue;
            };
            // Records below the position were already projected (a re-fetch after seeking).
            let next = loaded.projector.next_offset();
            let records: Vec<StoredRecord> = records.into_iter().filter(|r| r.offset >= next).collect();
            if records.is_empty() {
                continue;
            }
            let (entries_topic, producer) = (self.options.entries_topic.as_deref(), self.entries.as_ref());
            let batch = loaded.projector.project_publishing(&records, &mut |entries| match (
                entries_topic,
                producer,
            ) {
                (Some(topic), Some(producer)) => publish_entries(producer, topic, entries),
                _ => Ok(()),
            })?;
            report.records += batch.records;
            report.entries += batch.entries;
            self.consumer
                .context()
                .positions
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(partition, batch.next_offset);
            let _ = commits.add_partition_offset(
                &self.options.kafka.topic,
                partition,
                Offset::Offset(batch.next_offset as i64),
            );
            report_progress(partition, loaded, batch.next_offset);
        }
        if commits.count() > 0 {
            // Advisory: lag monitoring reads it; resumption reads the stores.
            let _ = self.consumer.commit(&commits, CommitMode::Async);
        }
        metrics::counter!("ledger_projector_abandoned_total").increment(report.abandoned as u64);
        Ok(report)
    }

    fn generation(&self) -> u64 {
        self.consumer.context().log.lock().unwrap_or_else(PoisonError::into_inner).generation
    }

    /// Applies what the rebalance callback recorded. Revoked partitions stop being answered for
    /// at once, but their loaded state is parked: in the eager protocol every rebalance revokes
    /// everything first, and a partition given back resumes from memory instead of a replay.
    /// Parked state is exactly the partition's own store at its offset (stores are per member),
    /// so it stays valid however long the partition was elsewhere. The next full assignment
    /// drops what is not in it and loads what is new.
    fn apply_rebalances(&mut self) -> Result<(), ProjectorError> {
        let (assignment, revoked) = {
            let mut log = self.consumer.context().log.lock().unwrap_or_else(PoisonError::into_inner);
            (log.assignment.take(), std::mem::take(&mut log.revoked))
        };
        if revoked {
            self.ownership.write().unwrap_or_else(PoisonError::into_inner).clear();
        }
        let Some(assignment) = assignment else { return Ok(()) };
        let released: Vec<i32> = self.loaded.keys().copied().filter(|p| !assignment.contains(p)).collect();
        for partition in released {
            self.loaded.remove(&partition);
            let context = self.consumer.context();
            context.positions.lock().unwrap_or_else(PoisonError::into_inner).remove(&partition);
            tracing::info!(partition, "partition released");
        }
        let mut ownership = BTreeMap::new();
        for partition in assignment {
            if !self.loaded.contains_key(&partition) {
                self.load(partition)?;
            }
            if let Some(loaded) = self.loaded.get(&partition) {
                ownership.insert(partition, loaded.owned.clone());
            }
        }
        *self.ownership.write().unwrap_or_else(PoisonError::into_inner) = ownership;
        Ok(())
    }

    /// Points the consumer at the projectors' positions for everything it is assigned, after
    /// records fetched around a rebalance were abandoned.
    fn reposition(&self) -> Result<(), ProjectorError> {
        let assignment = self.consumer.assignment().map_err(kafka_error)?;
        let positions =
            self.consumer.context().positions.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let mut positioned = TopicPartitionList::new();
        for element in assignment.elements() {
            let partition = element.partition();
            let Some(&offset) = positions.get(&partition) else { continue };
            positioned
                .add_partition_offset(&self.options.kafka.topic, partition, Offset::Offset(offset as i64))
                .map_err(kafka_error)?;
        }
        self.consumer.assign(&positioned).map_err(kafka_error)
    }

    /// Rebuilds a newly assigned partition's fold state from its log prefix.
    fn load(&mut self, partition: i32) -> Result<(), ProjectorError> {
        let context = self.consumer.context();
        let store = context.store_of(partition).map_err(ProjectorError::Group)?;
        let reader = PartitionReader::open(&self.options.kafka, partition)?;
        let started = Instant::now();
        let mut last_report = Instant::now();
        let projector = Projector::resume(
            &reader,
            store.clone(),
            PARTITION_CONSUMER,
            self.options.ledger,
            (self.pricing)(),
            &mut |done, total| {
                if last_report.elapsed() > Duration::from_secs(5) {
                    tracing::info!(partition, done, total, "replaying the partition's prefix into memory");
                    last_report = Instant::now();
                }
            },
        )?;
        let end = ledger_log::EventLog::end_offset(&reader);
        tracing::info!(
            partition,
            stored_offset = projector.next_offset(),
            partition_end = end,
            seconds = started.elapsed().as_secs_f64(),
            "partition loaded"
        );
        if projector.next_offset() < end {
            tracing::info!(
                partition,
                from = projector.next_offset(),
                to = end,
                "catching up with the partition"
            );
        }
        context
            .positions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(partition, projector.next_offset());
        let owned = OwnedPartition { store, ledger: projector.ledger() };
        self.loaded
            .insert(partition, Loaded { projector, owned, catch_up_to: end, last_report: Instant::now() });
        Ok(())
    }

    /// Leaves the group cleanly (the partitions go to the other members at once).
    pub fn close(self) {
        self.consumer.unsubscribe();
        if let Some(producer) = &self.entries {
            let _ = producer.flush(Duration::from_secs(10));
        }
    }
}

fn report_progress(partition: i32, loaded: &mut Loaded, next_offset: u64) {
    if next_offset < loaded.catch_up_to && loaded.last_report.elapsed() > Duration::from_secs(5) {
        tracing::info!(partition, done = next_offset, total = loaded.catch_up_to, "rebuilding partition");
        loaded.last_report = Instant::now();
    }
    metrics::gauge!("ledger_partition_offset", "partition" => partition.to_string()).set(next_offset as f64);
}

/// Publishes a batch's entries keyed by WABA (id in a header) and waits for all deliveries.
fn publish_entries(
    producer: &ThreadedProducer<EntryDeliveries>,
    topic: &str,
    entries: &[Entry],
) -> Result<(), ProjectorError> {
    if entries.is_empty() {
        return Ok(());
    }
    let failed_before = producer.context().failed.load(Ordering::SeqCst);
    for entry in entries {
        let payload = ledger_proto::encode_entry(entry);
        let id = entry.id.to_string();
        let headers =
            OwnedHeaders::new().insert(rdkafka::message::Header { key: "entry-id", value: Some(&id) });
        let mut record = BaseRecord::to(topic)
            .key(entry.fact.context().waba_id.as_str())
            .payload(&payload)
            .headers(headers);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((
                    rdkafka::error::KafkaError::MessageProduction(
                        rdkafka::types::RDKafkaErrorCode::QueueFull,
                    ),
                    r,
                )) => {
                    record = r;
                    producer.poll(Duration::from_millis(10));
                }
                Err((error, _)) => return Err(ProjectorError::Publish(error.to_string())),
            }
        }
    }
    // The entries must be in Kafka before the offset moves past them.
    producer.flush(Duration::from_secs(30)).map_err(|e| ProjectorError::Publish(e.to_string()))?;
    if producer.context().failed.load(Ordering::SeqCst) != failed_before {
        return Err(ProjectorError::Publish("an entry's delivery to the entries topic failed".into()));
    }
    Ok(())
}

/// Counts failed entry deliveries: `flush` waits for reports but does not say how they went.
#[derive(Default)]
struct EntryDeliveries {
    failed: std::sync::atomic::AtomicU64,
}

impl ClientContext for EntryDeliveries {}

impl ProducerContext for EntryDeliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((error, _)) = result {
            tracing::warn!(%error, "entry delivery failed");
            self.failed.fetch_add(1, Ordering::SeqCst);
        }
    }
}

fn kafka_error(error: rdkafka::error::KafkaError) -> ProjectorError {
    ProjectorError::Log(ledger_log::LogError::Unavailable(error.to_string()))
}
