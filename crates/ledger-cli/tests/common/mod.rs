//! What the end-to-end tests share: the embedded reference run they compare against, and reading
//! a Kafka topic back. Each test binary uses part of it.
#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ledger_core::{LedgerConfig, Timestamp};
use ledger_ingest::{Limits, Provider};
use ledger_log::rdkafka::consumer::{BaseConsumer, Consumer};
use ledger_log::rdkafka::message::{Headers, Message};
use ledger_log::rdkafka::{ClientConfig, Offset, TopicPartitionList};
use ledger_log::{EmbeddedLog, EmbeddedLogOptions, EventLog, LogRecord};
use ledger_projector::{drain, BatchReport, Projector};
use ledger_store::{Store, PROJECTOR};

/// The log records of Meta webhooks, as the ingest path makes them (receive time fixed at 1).
pub fn records(webhooks: &[ledger_bench::Webhook]) -> Vec<Vec<LogRecord>> {
    webhooks
        .iter()
        .map(|w| {
            ledger_server::ingest::prepare(
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

/// Projects whatever `data/log` holds beyond `data/state`'s offset, as a restarted server would.
pub fn catch_up(data: &Path) -> (Arc<Store>, BatchReport) {
    catch_up_with(data, LedgerConfig::default())
}

fn catch_up_with(data: &Path, config: LedgerConfig) -> (Arc<Store>, BatchReport) {
    let log = EmbeddedLog::open(&data.join("log"), EmbeddedLogOptions::default()).expect("log");
    let store = Arc::new(Store::open(&data.join("state")).expect("state"));
    let pricing = ledger_server::projection::projection_pricing(Arc::new(ledger_pricing::Pricing::bundled()));
    let mut projector =
        Projector::resume(&log, store.clone(), PROJECTOR, config, pricing, &mut |_, _| {}).expect("resume");
    let report = drain(&mut projector, &log, 4096, log.end_offset(), &mut |_, _| {}).expect("drain");
    (store, report)
}

/// One clean embedded run over `webhooks` in `data`: the reference state.
pub fn embedded_run(data: &Path, webhooks: &[ledger_bench::Webhook]) -> (Arc<Store>, BatchReport) {
    embedded_run_with(data, webhooks, LedgerConfig::default())
}

/// [`embedded_run`] with a ledger configuration.
pub fn embedded_run_with(
    data: &Path,
    webhooks: &[ledger_bench::Webhook],
    config: LedgerConfig,
) -> (Arc<Store>, BatchReport) {
    {
        let log = EmbeddedLog::open(&data.join("log"), EmbeddedLogOptions::default()).expect("log");
        for batch in records(webhooks) {
            log.append(batch).wait_blocking().expect("append");
        }
    }
    catch_up_with(data, config)
}

/// Each partition's end offset.
pub fn high_watermarks(bootstrap: &str, topic: &str, partitions: i32) -> Vec<u64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "test-watermarks")
        .create()
        .expect("consumer");
    (0..partitions)
        .map(|p| consumer.fetch_watermarks(topic, p, Duration::from_secs(10)).expect("watermarks").1 as u64)
        .collect()
}

/// Every record of the entries topic: its key and its `entry-id` header.
pub fn entries_on_topic(bootstrap: &str, partitions: i32) -> Vec<(Vec<u8>, String)> {
    let topic = ledger_log::ENTRIES_TOPIC;
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "test-entries")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions {
        assignment.add_partition_offset(topic, p, Offset::Beginning).expect("partition");
    }
    consumer.assign(&assignment).expect("assign");
    let total: u64 = high_watermarks(bootstrap, topic, partitions).iter().sum();
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while (out.len() as u64) < total && Instant::now() < deadline {
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            let message = message.expect("entry message");
            let headers = message.headers().expect("headers");
            let id = headers.iter().find(|h| h.key == "entry-id").and_then(|h| h.value).expect("entry-id");
            out.push((message.key().unwrap_or_default().to_vec(), String::from_utf8_lossy(id).into_owned()));
        }
    }
    assert_eq!(out.len() as u64, total, "read the whole entries topic");
    out
}
