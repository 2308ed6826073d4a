//! Projector group members in-process against librdkafka's mock cluster (its group coordinator
//! included): two members sharing 4 partitions, the second joining mid-traffic, hold together the
//! state of one embedded run, and every entry reaches the entries topic. The same scenario runs
//! against Tansu as separate processes in `kafka.rs`; this one isolates the group logic and runs
//! where no broker binary is built.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ledger_core::{LedgerConfig, Timestamp};
use ledger_ingest::{Limits, Provider};
use ledger_log::rdkafka::consumer::{BaseConsumer, Consumer};
use ledger_log::rdkafka::message::{Headers, Message};
use ledger_log::rdkafka::mocking::MockCluster;
use ledger_log::rdkafka::{ClientConfig, Offset, TopicPartitionList};
use ledger_log::{EmbeddedLog, EmbeddedLogOptions, EventLog, KafkaLog, KafkaOptions, LogRecord};
use ledger_projector::{drain, GroupMember, GroupOptions, Ownership, Projector, PARTITION_CONSUMER};
use ledger_store::{StateItems, Store, PROJECTOR};

const PARTITIONS: i32 = 4;

fn records(webhooks: &[ledger_bench::Webhook]) -> Vec<Vec<LogRecord>> {
    webhooks
        .iter()
        .map(|w| {
            ledger_query::ingest::prepare(
                Provider::MetaCloud,
                w.body.as_bytes(),
                Timestamp(1),
                &Limits::default(),
            )
            .expect("valid")
            .0
        })
        .collect()
}

fn high_watermarks(bootstrap: &str, topic: &str) -> Vec<u64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "group-mock-watermarks")
        .create()
        .expect("consumer");
    (0..PARTITIONS)
        .map(|p| consumer.fetch_watermarks(topic, p, Duration::from_secs(10)).expect("watermarks").1 as u64)
        .collect()
}

struct Running {
    ownership: Ownership,
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

fn start_member(options: &KafkaOptions, data: &std::path::Path) -> Running {
    let group = GroupOptions {
        kafka: options.clone(),
        group_id: "projectors".into(),
        data_dir: data.to_owned(),
        entries_topic: Some(ledger_log::ENTRIES_TOPIC.into()),
        batch_size: 64,
        ledger: LedgerConfig::default(),
        session_timeout: None,
        max_poll_interval: ledger_projector::DEFAULT_MAX_POLL_INTERVAL,
    };
    let pricing = Arc::new(ledger_pricing::Pricing::bundled());
    let mut member = GroupMember::join(
        group,
        Box::new(move || ledger_query::billing::projection_pricing(pricing.clone())),
    )
    .expect("join");
    let ownership = member.ownership();
    let stop = Arc::new(AtomicBool::new(false));
    let thread = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            member.run(&stop).expect("member runs");
            member.close();
        })
    };
    Running { ownership, stop, thread }
}

#[test]
fn two_members_with_a_rebalance_equal_one_embedded_run() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic(ledger_log::EVENTS_TOPIC, PARTITIONS, 1).expect("events topic");
    cluster.create_topic(ledger_log::ENTRIES_TOPIC, PARTITIONS, 1).expect("entries topic");
    let bootstrap = cluster.bootstrap_servers();
    let options = KafkaOptions::new(bootstrap.clone());
    let log = KafkaLog::connect(&options).expect("kafka log");

    let webhooks = ledger_bench::traffic(5, 60, 1_756_684_800);
    let batches = records(&webhooks);
    let dir = tempfile::tempdir().expect("tempdir");
    let a = start_member(&options, &dir.path().join("a"));
    let (first, second) = batches.split_at(batches.len() / 2);
    for batch in first {
        log.append(batch.clone()).wait_blocking().expect("append");
    }
    let b = start_member(&options, &dir.path().join("b"));
    for batch in second {
        log.append(batch.clone()).wait_blocking().expect("append");
    }

    let ends = high_watermarks(&bootstrap, ledger_log::EVENTS_TOPIC);
    let deadline = Instant::now() + Duration::from_secs(120);
    let owners: BTreeMap<i32, (usize, Arc<Store>)> = loop {
        let mut owners = BTreeMap::new();
        for (i, member) in [&a, &b].iter().enumerate() {
            for (p, part) in member.ownership.read().expect("ownership").iter() {
                owners.insert(*p, (i, part.store.clone()));
            }
        }
        let caught_up = (0..PARTITIONS).all(|p| {
            owners.get(&p).is_some_and(|(_, store)| {
                store.offset(PARTITION_CONSUMER).expect("offset") >= ends[p as usize]
            })
        });
        // The joining member gets its share once the group has rebalanced.
        let members_owning: BTreeSet<usize> = owners.values().map(|(i, _)| *i).collect();
        if caught_up && members_owning.len() == 2 {
            break owners;
        }
        assert!(Instant::now() < deadline, "members did not catch up; owners: {:?}", owners.keys());
        std::thread::sleep(Duration::from_millis(50));
    };
    let members_used: BTreeSet<usize> = owners.values().map(|(i, _)| *i).collect();
    assert_eq!(members_used.len(), 2, "both members own partitions after the rebalance");

    let mut partitioned = StateItems::default();
    for (_, store) in owners.values() {
        partitioned.merge(store.state_items().expect("items"));
    }
    for member in [a, b] {
        member.stop.store(true, Ordering::SeqCst);
        member.thread.join().expect("member thread");
    }

    // One embedded run over the same records.
    let embedded_dir = dir.path().join("embedded");
    let embedded_log =
        EmbeddedLog::open(&embedded_dir.join("log"), EmbeddedLogOptions::default()).expect("log");
    for batch in &batches {
        embedded_log.append(batch.clone()).wait_blocking().expect("append");
    }
    let store = Arc::new(Store::open(&embedded_dir.join("state")).expect("state"));
    let pricing = ledger_query::billing::projection_pricing(Arc::new(ledger_pricing::Pricing::bundled()));
    let mut projector = Projector::resume(
        &embedded_log,
        store.clone(),
        PROJECTOR,
        LedgerConfig::default(),
        pricing,
        &mut |_, _| {},
    )
    .expect("resume");
    let report =
        drain(&mut projector, &embedded_log, 4096, embedded_log.end_offset(), &mut |_, _| {}).expect("drain");
    let embedded = store.state_items().expect("items");

    assert!(!embedded.events.is_empty() && !embedded.live_entries.is_empty());
    assert_eq!(partitioned.events, embedded.events, "event keys");
    assert_eq!(partitioned.live_entries, embedded.live_entries, "standing entries");
    assert_eq!(partitioned.counters, embedded.counters, "usage and billing counters");
    assert!(partitioned.records == embedded.records, "timelines and message states");

    // Every journal entry is on the entries topic, keyed by WABA, at least once.
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", "group-mock-entries")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        assignment.add_partition_offset(ledger_log::ENTRIES_TOPIC, p, Offset::Beginning).expect("partition");
    }
    consumer.assign(&assignment).expect("assign");
    let total: u64 = high_watermarks(&bootstrap, ledger_log::ENTRIES_TOPIC).iter().sum();
    let mut ids = BTreeSet::new();
    for _ in 0..total {
        let message = consumer.poll(Duration::from_secs(10)).expect("an entry").expect("entry message");
        assert_eq!(message.key(), Some(ledger_bench::WABA_ID.as_bytes()));
        let headers = message.headers().expect("headers");
        let id = headers.iter().find(|h| h.key == "entry-id").and_then(|h| h.value).expect("entry-id");
        ids.insert(id.to_vec());
    }
    assert_eq!(ids.len(), report.entries, "distinct entry ids on the entries topic");
}
