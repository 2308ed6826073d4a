//! Projector group members in-process against librdkafka's mock cluster (its group coordinator
//! included): two members sharing 4 partitions, the second joining mid-traffic, hold together the
//! state of one embedded run, and every entry reaches the entries topic. The same scenario runs
//! against Tansu as separate processes in `kafka.rs`; this one isolates the group logic and runs
//! where no broker binary is built.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ledger_log::rdkafka::mocking::MockCluster;
use ledger_log::{EventLog, KafkaLog, KafkaOptions};
use ledger_projector::{GroupMember, GroupOptions, Ownership, PARTITION_CONSUMER};
use ledger_store::{StateItems, Store};

const PARTITIONS: i32 = 4;

struct Running {
    ownership: Ownership,
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

fn start_member(options: &KafkaOptions, data: &std::path::Path) -> Running {
    let mut group = GroupOptions::new(options.clone(), "projectors", data);
    group.entries_topic = Some(ledger_log::ENTRIES_TOPIC.into());
    group.batch_size = 64;
    // The mock coordinator times its rebalance phases by the session timeout (it waits one
    // session timeout, less a second, for members to rejoin after a join). librdkafka's 45 s
    // default makes each rebalance take most of a minute, and a loaded machine can need several.
    group.session_timeout = Some(Duration::from_secs(10));
    let pricing = Arc::new(ledger_pricing::Pricing::bundled());
    let mut member =
        GroupMember::join(group, ledger_query::billing::partition_pricing(pricing)).expect("join");
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
    let batches = common::records(&webhooks);
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

    let ends = common::high_watermarks(&bootstrap, ledger_log::EVENTS_TOPIC, PARTITIONS);
    let deadline = Instant::now() + Duration::from_secs(240);
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

    // One embedded run over the same webhooks.
    let (store, report) = common::embedded_run(&dir.path().join("embedded"), &webhooks);
    let embedded = store.state_items().expect("items");

    assert!(!embedded.events.is_empty() && !embedded.live_entries.is_empty());
    assert_eq!(partitioned.events, embedded.events, "event keys");
    assert_eq!(partitioned.live_entries, embedded.live_entries, "standing entries");
    assert_eq!(partitioned.counters, embedded.counters, "usage and billing counters");
    assert!(partitioned.records == embedded.records, "timelines and message states");

    // Every journal entry is on the entries topic, keyed by WABA, at least once.
    let mut ids = BTreeSet::new();
    for (key, id) in common::entries_on_topic(&bootstrap, PARTITIONS) {
        assert_eq!(key, ledger_bench::WABA_ID.as_bytes());
        ids.insert(id);
    }
    assert_eq!(ids.len(), report.entries, "distinct entry ids on the entries topic");
}
