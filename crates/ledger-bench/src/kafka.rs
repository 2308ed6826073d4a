//! `ledger-bench kafka`: Kafka mode end to end, and the broker's own drain rate for comparison.
//!
//! 1. ingest: synthetic Meta webhooks posted over HTTP to an in-process ingest worker, each
//!    acknowledged after Kafka's delivery report (webhooks/s, events/s);
//! 2. projection: two projector group members (fresh stores) drain the 4-partition topic —
//!    events/s from the first poll until both own every partition at its end;
//! 3. raw: a plain rdkafka consumer drains the same topic (records/s).
//!
//! The target is projection ≥ 80 % of raw. Runs against `--brokers`, or starts Tansu
//! (`scripts/tansu.sh`) on a loopback port when none is given.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use hyper::body::Bytes;
use ledger_log::rdkafka::consumer::{BaseConsumer, Consumer};
use ledger_log::rdkafka::{ClientConfig, Offset, TopicPartitionList};
use ledger_log::{KafkaLog, KafkaOptions};
use ledger_projector::{GroupMember, GroupOptions};

const PARTITIONS: i32 = 4;

/// The broker process and its database directory (removed when this is dropped).
struct Tansu {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_tansu(topic: &str) -> anyhow::Result<(String, Tansu)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let output = Command::new(root.join("scripts/tansu.sh")).stderr(Stdio::inherit()).output()?;
    anyhow::ensure!(output.status.success(), "scripts/tansu.sh failed");
    let bin = String::from_utf8(output.stdout)?.trim().to_owned();
    let dir = tempfile::tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let url = format!("tcp://127.0.0.1:{port}");
    let child = Command::new(&bin)
        .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url, "--storage-engine"])
        // Tansu resolves the SQLite path against its working directory.
        .arg("sqlite://tansu.db")
        .current_dir(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let tansu = Tansu { child, _dir: dir };
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        anyhow::ensure!(Instant::now() < deadline, "tansu did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let status = Command::new(&bin)
        .args(["topic", "create", topic, "--partitions", &PARTITIONS.to_string(), "--broker", &url])
        .stdout(Stdio::null())
        .status()?;
    anyhow::ensure!(status.success(), "creating {topic}");
    Ok((format!("127.0.0.1:{port}"), tansu))
}

fn high_watermarks(brokers: &str, topic: &str) -> anyhow::Result<Vec<i64>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "ledger-bench-watermarks")
        .create()?;
    (0..PARTITIONS).map(|p| Ok(consumer.fetch_watermarks(topic, p, Duration::from_secs(10))?.1)).collect()
}

pub async fn run(brokers: Option<String>, contacts: usize, connections: usize) -> anyhow::Result<()> {
    let topic = format!("ledger.bench.{}", std::process::id());
    let (brokers, _tansu) = match brokers {
        Some(brokers) => (brokers, None),
        None => {
            let (brokers, tansu) = start_tansu(&topic)?;
            (brokers, Some(tansu))
        }
    };
    let mut options = KafkaOptions::new(brokers.clone());
    options.topic = topic.clone();
    let log = Arc::new(KafkaLog::connect(&options).context("connecting to Kafka")?);
    anyhow::ensure!(log.partitions() == PARTITIONS, "the bench topic needs {PARTITIONS} partitions");

    // 1. Ingest over HTTP into Kafka.
    let dir = tempfile::tempdir()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let config = ledger_server::ServeConfig::new(addr, dir.path().join("ingest"));
    let (stop_server, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(ledger_server::server::serve_ingest_on(listener, config, log.clone(), async {
        let _ = stopped.await;
    }));
    let webhooks = ledger_bench::traffic(3, contacts, 1_756_684_800);
    let bodies: Vec<Bytes> = webhooks.into_iter().map(|w| Bytes::from(w.body)).collect();
    let total = bodies.len();
    let shares: Vec<Vec<Bytes>> =
        (0..connections).map(|c| bodies.iter().skip(c).step_by(connections).cloned().collect()).collect();
    let started = Instant::now();
    let mut posters = Vec::new();
    for share in shares {
        posters.push(tokio::spawn(async move {
            let mut client = crate::connect(addr).await?;
            for body in share {
                loop {
                    match crate::request(&mut client, "POST", "/v1/webhooks/meta_cloud", body.clone()).await?
                    {
                        200 => break,
                        503 => tokio::time::sleep(Duration::from_millis(50)).await,
                        status => anyhow::bail!("webhook answered {status}"),
                    }
                }
            }
            anyhow::Ok(())
        }));
    }
    for poster in posters {
        poster.await??;
    }
    let ingest_seconds = started.elapsed().as_secs_f64();
    let _ = stop_server.send(());
    server.await??;
    let records: i64 = high_watermarks(&brokers, &topic)?.iter().sum();
    println!(
        "ingest: {total} webhooks ({records} events) acknowledged by Kafka in {ingest_seconds:.2}s = {:.0} webhooks/s, {:.0} events/s over {connections} connections",
        total as f64 / ingest_seconds,
        records as f64 / ingest_seconds
    );

    // 2. Two projector members drain it.
    let ends = high_watermarks(&brokers, &topic)?;
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut members = Vec::new();
    let mut ownerships = Vec::new();
    for m in 0..2 {
        let group = GroupOptions::new(
            options.clone(),
            format!("{topic}.projectors"),
            dir.path().join(format!("member-{m}")),
        );
        let pricing = Arc::new(ledger_pricing::Pricing::bundled());
        let mut member = GroupMember::join(group, ledger_server::projection::partition_pricing(pricing))?;
        ownerships.push(member.ownership());
        let stop = stop.clone();
        members.push(std::thread::spawn(move || {
            let result = member.run(&stop);
            member.close();
            result
        }));
    }
    // When every partition first has an owner: the group's join and assignment are over.
    let mut assigned_at: Option<Instant> = None;
    loop {
        let mut done = vec![false; PARTITIONS as usize];
        let mut owned_count = 0;
        for ownership in &ownerships {
            let owned = ownership.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            owned_count += owned.len();
            for (&p, part) in owned.iter() {
                let offset = part.store.offset(ledger_projector::PARTITION_CONSUMER)?;
                done[p as usize] = offset as i64 >= ends[p as usize];
            }
        }
        if assigned_at.is_none() && owned_count == PARTITIONS as usize {
            assigned_at = Some(Instant::now());
        }
        if done.iter().all(|d| *d) {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let projection_seconds = started.elapsed().as_secs_f64();
    let after_join_seconds = assigned_at.map_or(projection_seconds, |at| at.elapsed().as_secs_f64());
    stop.store(true, Ordering::SeqCst);
    for member in members {
        member.join().map_err(|_| anyhow::anyhow!("member panicked"))??;
    }
    let projection_rate = records as f64 / after_join_seconds;
    println!(
        "projection: 2 members, {PARTITIONS} partitions, {records} events in {projection_seconds:.2}s with the group join = {:.0} events/s; {after_join_seconds:.2}s once every partition had its owner = {projection_rate:.0} events/s",
        records as f64 / projection_seconds
    );

    // 3. A plain consumer drains the same topic.
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", "ledger-bench-raw")
        .set("enable.auto.commit", "false")
        .create()?;
    let mut assignment = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        assignment.add_partition_offset(&topic, p, Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    let started = Instant::now();
    let mut read = 0i64;
    while read < records {
        if let Some(message) = consumer.poll(Duration::from_secs(10)) {
            message?;
            read += 1;
        } else {
            anyhow::bail!("raw consumer stalled at {read}/{records}");
        }
    }
    let raw_seconds = started.elapsed().as_secs_f64();
    let raw_rate = records as f64 / raw_seconds;
    println!("raw consumer: {records} records in {raw_seconds:.2}s = {raw_rate:.0} records/s");
    println!(
        "projection (after the join) / raw = {:.1} % (target ≥ 80 %)",
        100.0 * projection_rate / raw_rate
    );
    Ok(())
}
