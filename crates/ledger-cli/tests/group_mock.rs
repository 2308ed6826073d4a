//! Projector group members in-process against librdkafka's mock cluster (its group coordinator
//! included): two members sharing 4 partitions, the second joining mid-traffic, hold together the
//! state of one embedded run, and every entry reaches the entries topic. The same scenario runs
//! against Tansu as separate processes in `kafka.rs`; this one isolates the group logic and runs
//! where no broker binary is built.
//!
//! Also here, because it needs a ledger configuration the `ledger` binary does not expose (a small
//! allowance): two members' HTTP APIs answering account usage with a free tier granted once across
//! partitions (R13, R26), as the embedded ledger grants it.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ledger_core::LedgerConfig;
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
        GroupMember::join(group, ledger_server::projection::partition_pricing(pricing)).expect("join");
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
    assert!(partitioned.contacts == embedded.contacts, "contact states");

    // Every journal entry is on the entries topic, keyed by WABA, at least once.
    let mut ids = BTreeSet::new();
    for (key, id) in common::entries_on_topic(&bootstrap, PARTITIONS) {
        assert_eq!(key, ledger_bench::WABA_ID.as_bytes());
        ids.insert(id);
    }
    assert_eq!(ids.len(), report.entries, "distinct entry ids on the entries topic");
}

/// Usage rows as comparable tuples, in a fixed order.
fn usage_rows(usage: &serde_json::Value) -> BTreeSet<(String, String, String, String, i64)> {
    let text = |row: &serde_json::Value, field: &str| row[field].as_str().unwrap_or_default().to_owned();
    usage["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|row| {
            let count = row["count"].as_i64().expect("count");
            (text(row, "unit"), text(row, "category"), text(row, "market"), text(row, "pricing_type"), count)
        })
        .collect()
}

fn get_json(url: &str) -> serde_json::Value {
    let mut response = ureq::get(url).call().unwrap_or_else(|e| panic!("{url}: {e}"));
    response.body_mut().read_json().expect("json")
}

fn free_tier_total(usage: &serde_json::Value) -> i64 {
    usage_rows(usage).iter().filter(|row| row.3 == "free_tier").map(|row| row.4).sum()
}

/// R26 in Kafka mode. March 2024 (era 2): each contact's user message opens a service
/// conversation, free for the account's first claims of the month. The allowance is lowered to
/// 5 so 60 contacts overfill it; spread over four partitions, each partition's ledger grants its
/// own first five. Account usage from either member must still show exactly five free
/// conversations — the account's earliest — and equal the embedded ledger's usage.
#[test]
fn member_usage_grants_an_allowance_once_across_partitions() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic(ledger_log::EVENTS_TOPIC, PARTITIONS, 1).expect("events topic");
    let bootstrap = cluster.bootstrap_servers();
    let options = KafkaOptions::new(bootstrap.clone());
    let log = KafkaLog::connect(&options).expect("kafka log");
    let config = LedgerConfig { allowance_limit: Some(5), ..LedgerConfig::default() };
    let webhooks = ledger_bench::traffic(5, 60, 1_709_424_000); // 2024-03-03
    for batch in common::records(&webhooks) {
        log.append(batch).wait_blocking().expect("append");
    }
    let ends = common::high_watermarks(&bootstrap, ledger_log::EVENTS_TOPIC, PARTITIONS);

    let dir = tempfile::tempdir().expect("tempdir");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let listeners: Vec<std::net::TcpListener> =
        (0..2).map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind")).collect();
    let urls: Vec<String> =
        listeners.iter().map(|l| format!("http://{}", l.local_addr().expect("address"))).collect();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut members = Vec::new();
    for (i, listener) in listeners.into_iter().enumerate() {
        listener.set_nonblocking(true).expect("nonblocking");
        let data_dir = dir.path().join(format!("member-{i}"));
        let mut serve =
            ledger_server::ServeConfig::new(listener.local_addr().expect("address"), data_dir.clone());
        serve.ledger = config;
        let mut group = GroupOptions::new(options.clone(), "usage-members", data_dir);
        group.ledger = config;
        group.batch_size = 64;
        group.session_timeout = Some(Duration::from_secs(10));
        let peers = vec![urls[1 - i].clone()];
        let mut stopped = stopped.clone();
        members.push(runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            let shutdown = async move {
                let _ = stopped.wait_for(|stop| *stop).await;
            };
            ledger_server::server::serve_member_on(listener, serve, group, peers, shutdown).await
        }));
    }

    // Both members own partitions and every partition is projected to the end.
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let mut owned: BTreeMap<i64, (usize, u64)> = BTreeMap::new();
        for (i, url) in urls.iter().enumerate() {
            if let Ok(mut response) = ureq::get(&format!("{url}/v1/partitions")).call() {
                let view: serde_json::Value = response.body_mut().read_json().expect("json");
                for part in view["owned"].as_array().into_iter().flatten() {
                    let partition = part["partition"].as_i64().expect("partition");
                    owned.insert(partition, (i, part["offset"].as_u64().expect("offset")));
                }
            }
        }
        let caught_up = (0..PARTITIONS as i64)
            .all(|p| owned.get(&p).is_some_and(|(_, offset)| *offset >= ends[p as usize]));
        let members_owning: BTreeSet<usize> = owned.values().map(|(i, _)| *i).collect();
        if caught_up && members_owning.len() == 2 {
            break;
        }
        assert!(Instant::now() < deadline, "members did not catch up: {owned:?}, ends {ends:?}");
        std::thread::sleep(Duration::from_millis(100));
    }

    let waba = ledger_bench::WABA_ID;
    let usage: Vec<serde_json::Value> =
        urls.iter().map(|url| get_json(&format!("{url}/v1/accounts/{waba}/usage?month=2024-03"))).collect();
    let partition_sums: i64 = urls
        .iter()
        .map(|url| {
            free_tier_total(&get_json(&format!("{url}/v1/accounts/{waba}/usage?month=2024-03&scope=local")))
        })
        .sum();
    stop.send(true).expect("stop members");
    for member in members {
        runtime.block_on(member).expect("member task").expect("member stops cleanly");
    }

    let (store, _) = common::embedded_run_with(&dir.path().join("embedded"), &webhooks, config);
    let queries = ledger_query::Queries::new(store, Arc::new(ledger_pricing::Pricing::bundled()));
    let embedded = serde_json::to_value(queries.usage(waba, "2024-03").expect("usage")).expect("json");

    assert_eq!(free_tier_total(&embedded), 5, "the embedded ledger fills the allowance: {embedded}");
    assert!(
        partition_sums > 5,
        "each partition granted its own allowance: {partition_sums} free in the sums"
    );
    assert_eq!(usage_rows(&usage[0]), usage_rows(&usage[1]), "both members answer the same");
    assert_eq!(usage_rows(&usage[0]), usage_rows(&embedded), "member usage equals the embedded ledger's");
}
