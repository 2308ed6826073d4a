//! Kafka mode end to end against a real Kafka-protocol broker (Tansu, started here on a loopback
//! port with SQLite storage and torn down after): webhooks into `ledger ingest`, through a
//! 4-partition topic, into `ledger project` members.
//!
//! - two members sharing the partitions, the second joining while traffic flows (a rebalance),
//!   hold together exactly the state one embedded run computes from the same webhooks;
//! - a member killed with SIGKILL mid-stream resumes from its stores without loss or double
//!   counting;
//! - the member API routes contact questions to the owner and sums account usage.
//!
//! The broker binary comes from `scripts/tansu.sh` (cached build) unless `TANSU_BIN` names one.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ledger_projector::{partition_path, PARTITION_CONSUMER};
use ledger_store::{StateItems, Store};

const PARTITIONS: i32 = 4;
const EVENTS: &str = "ledger.events.v1";
const ENTRIES: &str = "ledger.entries.v1";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("port")
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn tansu_bin() -> PathBuf {
    if let Ok(bin) = std::env::var("TANSU_BIN") {
        return PathBuf::from(bin);
    }
    let output = Command::new(workspace_root().join("scripts/tansu.sh"))
        .stderr(Stdio::inherit())
        .output()
        .expect("run scripts/tansu.sh");
    assert!(output.status.success(), "scripts/tansu.sh failed");
    PathBuf::from(String::from_utf8(output.stdout).expect("utf-8").trim())
}

/// A Tansu broker for one test; killed on drop.
struct Broker {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Broker {
    fn start() -> Broker {
        let bin = tansu_bin();
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let child = Command::new(&bin)
            .arg("broker")
            .arg("--listener-url")
            .arg(format!("tcp://127.0.0.1:{port}"))
            .arg("--advertised-listener-url")
            .arg(format!("tcp://127.0.0.1:{port}"))
            .arg("--storage-engine")
            // Tansu resolves the SQLite path against its working directory.
            .arg("sqlite://tansu.db")
            .current_dir(dir.path())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        let broker = Broker { child, port, _dir: dir };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the broker did not start listening");
            std::thread::sleep(Duration::from_millis(50));
        }
        for topic in [EVENTS, ENTRIES] {
            let status = Command::new(&bin)
                .args(["topic", "create", topic, "--partitions", &PARTITIONS.to_string(), "--broker"])
                .arg(broker.url())
                .stdout(Stdio::null())
                .status()
                .expect("tansu topic create");
            assert!(status.success(), "creating {topic}");
        }
        broker
    }

    fn url(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }

    fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn high_watermarks(&self, topic: &str) -> BTreeMap<i32, u64> {
        common::high_watermarks(&self.bootstrap(), topic, PARTITIONS)
            .into_iter()
            .zip(0..)
            .map(|(end, p)| (p, end))
            .collect()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `ledger` subprocess; killed on drop.
struct Ledger {
    child: Child,
    port: u16,
}

impl Ledger {
    fn ingest(broker: &Broker, data: &Path) -> Ledger {
        Ledger::spawn(&["ingest"], broker, data, free_port(), &[])
    }

    /// A projector member of the default group on `port`, told about the members on `peers`.
    fn project(broker: &Broker, data: &Path, port: u16, peers: &[u16]) -> Ledger {
        Ledger::project_in(broker, data, port, peers, "ledger-projector")
    }

    fn project_in(broker: &Broker, data: &Path, port: u16, peers: &[u16], group: &str) -> Ledger {
        let peers: Vec<String> = peers.iter().map(|p| format!("http://127.0.0.1:{p}")).collect();
        let args = ["project", "--batch-size", "512", "--group-id", group];
        Ledger::spawn(&args, broker, data, port, &peers)
    }

    fn spawn(command: &[&str], broker: &Broker, data: &Path, port: u16, peers: &[String]) -> Ledger {
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("ledger"));
        cmd.args(command)
            .args(["--listen", &format!("127.0.0.1:{port}"), "--brokers", &broker.bootstrap(), "--data-dir"])
            .arg(data)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        if !peers.is_empty() {
            cmd.arg("--peers").arg(peers.join(","));
        }
        let child = cmd.spawn().expect("start ledger");
        let ledger = Ledger { child, port };
        let agent = agent();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !agent.get(ledger.url("/healthz")).call().is_ok_and(|r| r.status() == 200) {
            assert!(Instant::now() < deadline, "ledger {command:?} did not come up");
            std::thread::sleep(Duration::from_millis(50));
        }
        if command.first() == Some(&"project") {
            // A member says it is ready once its projector thread runs.
            while !agent.get(ledger.url("/readyz")).call().is_ok_and(|r| r.status() == 200) {
                assert!(Instant::now() < deadline, "projector member never ready");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        ledger
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Owned partitions and their stored offsets.
    fn owned(&self) -> BTreeMap<i32, u64> {
        let Ok(response) = agent().get(self.url("/v1/partitions")).call() else { return BTreeMap::new() };
        let view: serde_json::Value = response.into_body().read_json().expect("json");
        view["owned"]
            .as_array()
            .expect("owned")
            .iter()
            .map(|o| (o["partition"].as_i64().expect("p") as i32, o["offset"].as_u64().expect("offset")))
            .collect()
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Ledger {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

/// Posts webhooks to the ingest worker, retrying 503s (the provider's behaviour).
fn post_all(url: &str, webhooks: &[ledger_bench::Webhook]) {
    let agent = agent();
    for (i, webhook) in webhooks.iter().enumerate() {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let response = agent
                .post(url)
                .header("content-type", "application/json")
                .send(webhook.body.as_str())
                .expect("post");
            match response.status().as_u16() {
                200 => break,
                503 if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
                status => panic!("webhook {i} answered {status}"),
            }
        }
    }
}

/// Waits until the members together own every partition at its end, each member owning some
/// (a joining member gets its share once the group has rebalanced); returns who owns what.
fn wait_caught_up(broker: &Broker, members: &[&Ledger]) -> BTreeMap<i32, usize> {
    let ends = broker.high_watermarks(EVENTS);
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let mut owners: BTreeMap<i32, (usize, u64)> = BTreeMap::new();
        for (i, member) in members.iter().enumerate() {
            for (partition, offset) in member.owned() {
                owners.insert(partition, (i, offset));
            }
        }
        let done = (0..PARTITIONS).all(|p| owners.get(&p).is_some_and(|(_, offset)| *offset >= ends[&p]));
        let members_owning: BTreeSet<usize> = owners.values().map(|(i, _)| *i).collect();
        if done && members_owning.len() == members.len() {
            return owners.into_iter().map(|(p, (i, _))| (p, i)).collect();
        }
        assert!(Instant::now() < deadline, "not caught up: owners {owners:?}, ends {ends:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The partitions' stores, each from the member that owned it, merged.
fn partitioned_state(owners: &BTreeMap<i32, usize>, data_dirs: &[&Path]) -> StateItems {
    let mut merged = StateItems::default();
    for (&partition, &member) in owners {
        let store = Store::open(&partition_path(data_dirs[member], partition)).expect("partition store");
        assert!(store.offset(PARTITION_CONSUMER).expect("offset") > 0, "partition {partition} was projected");
        merged.merge(store.state_items().expect("items"));
    }
    merged
}

/// One embedded run over the same webhooks: its state, its entry count and its September usage.
fn embedded_state(dir: &Path, webhooks: &[ledger_bench::Webhook]) -> (StateItems, usize, serde_json::Value) {
    let (store, report) = common::embedded_run(dir, webhooks);
    let queries = ledger_query::Queries::new(store.clone(), Arc::new(ledger_pricing::Pricing::bundled()));
    let usage = queries.usage(ledger_bench::WABA_ID, "2025-09").expect("usage");
    (
        store.state_items().expect("items"),
        report.entries,
        sorted_usage(serde_json::to_value(usage).expect("json")),
    )
}

/// A usage answer with its rows in a canonical order.
fn sorted_usage(mut usage: serde_json::Value) -> serde_json::Value {
    if let Some(rows) = usage["rows"].as_array_mut() {
        rows.sort_by_key(|row| row.to_string());
    }
    usage
}

fn assert_same_state(partitioned: &StateItems, embedded: &StateItems) {
    assert!(!embedded.events.is_empty() && !embedded.live_entries.is_empty(), "the run produced state");
    assert_eq!(partitioned.events, embedded.events, "event keys");
    assert_eq!(partitioned.live_entries, embedded.live_entries, "standing entries");
    assert_eq!(partitioned.counters, embedded.counters, "usage and billing counters");
    assert_eq!(partitioned.contacts.len(), embedded.contacts.len(), "contacts");
    assert!(partitioned.contacts == embedded.contacts, "contact states differ");
}

/// Distinct entry ids on the entries topic.
fn entry_ids(broker: &Broker) -> BTreeSet<String> {
    common::entries_on_topic(&broker.bootstrap(), PARTITIONS).into_iter().map(|(_, id)| id).collect()
}

#[test]
fn two_members_with_a_rebalance_mid_traffic_equal_one_embedded_run() {
    let broker = Broker::start();
    let webhooks = ledger_bench::traffic(7, 60, 1_756_684_800);
    let dir = tempfile::tempdir().expect("tempdir");
    let (ingest_dir, a_dir, b_dir) = (dir.path().join("ingest"), dir.path().join("a"), dir.path().join("b"));

    let ingest = Ledger::ingest(&broker, &ingest_dir);
    let webhook_url = ingest.url("/v1/webhooks/meta_cloud");
    let (a_port, b_port) = (free_port(), free_port());
    let a = Ledger::project(&broker, &a_dir, a_port, &[b_port]);
    let (first, second) = webhooks.split_at(webhooks.len() / 2);
    post_all(&webhook_url, first);
    // The second member joins while the rest streams in: the group rebalances mid-traffic.
    let poster = {
        let (second, url) = (second.to_vec(), webhook_url.clone());
        std::thread::spawn(move || post_all(&url, &second))
    };
    let b = Ledger::project(&broker, &b_dir, b_port, &[a_port]);
    poster.join().expect("poster");
    let owners = wait_caught_up(&broker, &[&a, &b]);
    let members_used: BTreeSet<usize> = owners.values().copied().collect();
    assert_eq!(members_used.len(), 2, "both members own partitions after the rebalance: {owners:?}");

    // The member API: a contact question answered by whichever member is asked (one of them
    // forwards it to the owner), and account usage summed over both.
    for member in [&a, &b] {
        let url =
            member.url(&format!("/v1/contacts/{}/16505550000000/timeline", ledger_bench::PHONE_NUMBER_ID));
        let response = agent().get(url).call().expect("timeline");
        assert_eq!(response.status(), 200, "timeline through member {}", member.port);
    }

    let usage: Vec<serde_json::Value> = [&a, &b]
        .iter()
        .map(|member| {
            let url = member.url(&format!("/v1/accounts/{}/usage?month=2025-09", ledger_bench::WABA_ID));
            let response = agent().get(url).call().expect("usage");
            assert_eq!(response.status(), 200);
            sorted_usage(response.into_body().read_json().expect("json"))
        })
        .collect();
    assert_eq!(usage[0], usage[1], "both members answer the account-wide sum");

    let ingest_entries = entry_ids(&broker);
    a.kill();
    b.kill();
    drop(ingest);
    let partitioned = partitioned_state(&owners, &[&a_dir, &b_dir]);
    let (embedded, embedded_entries, embedded_usage) =
        embedded_state(&dir.path().join("embedded"), &webhooks);
    assert_same_state(&partitioned, &embedded);
    assert_eq!(usage[0], embedded_usage, "usage summed over the members");
    // Every journal entry reached the entries topic (at least once; the ids deduplicate).
    assert_eq!(ingest_entries.len(), embedded_entries, "distinct entry ids on {ENTRIES}");
}

#[test]
fn a_member_killed_mid_stream_resumes_without_loss_or_double_counting() {
    let broker = Broker::start();
    let webhooks = ledger_bench::traffic(11, 60, 1_756_684_800);
    let dir = tempfile::tempdir().expect("tempdir");
    let (ingest_dir, data) = (dir.path().join("ingest"), dir.path().join("member"));
    let ingest = Ledger::ingest(&broker, &ingest_dir);
    let webhook_url = ingest.url("/v1/webhooks/meta_cloud");

    let (first, second) = webhooks.split_at(webhooks.len() / 2);
    post_all(&webhook_url, first);
    let member = Ledger::project(&broker, &data, free_port(), &[]);
    let poster = {
        let (second, url) = (second.to_vec(), webhook_url.clone());
        std::thread::spawn(move || post_all(&url, &second))
    };
    // Killed once it has written something, while webhooks still stream in.
    let deadline = Instant::now() + Duration::from_secs(60);
    while member.owned().values().all(|offset| *offset == 0) {
        assert!(Instant::now() < deadline, "the member never projected anything");
        std::thread::sleep(Duration::from_millis(10));
    }
    member.kill();
    poster.join().expect("poster");

    // Restarted on the same data directory. Tansu 0.6 does not expire a SIGKILLed member's
    // session (its group stays waiting for it), so the restart joins a group of its own: where
    // it resumes comes from its stores either way — the new group has no committed offsets, so
    // anything else would replay the partitions from 0.
    let member = Ledger::project_in(&broker, &data, free_port(), &[], "ledger-projector-restarted");
    let owners = wait_caught_up(&broker, &[&member]);
    member.kill();
    let partitioned = partitioned_state(&owners, &[&data]);
    let (embedded, _, _) = embedded_state(&dir.path().join("embedded"), &webhooks);
    assert_same_state(&partitioned, &embedded);
}
