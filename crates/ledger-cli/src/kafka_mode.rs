//! Kafka mode: `ledger ingest` (webhooks → Kafka) and `ledger project` (a projector group member
//! with the query API for the partitions it owns). See README "Two modes".

use std::sync::Arc;

use anyhow::Context;
use clap::Args;

use crate::config::{KafkaArgs, ServeArgs};

#[derive(Debug, Args)]
pub struct IngestArgs {
    #[command(flatten)]
    pub serve: ServeArgs,
    #[command(flatten)]
    pub kafka: KafkaArgs,
}

#[derive(Debug, Args)]
pub struct ProjectArgs {
    #[command(flatten)]
    pub serve: ServeArgs,
    #[command(flatten)]
    pub kafka: KafkaArgs,
    /// Do not publish derived entries to the entries topic.
    #[arg(long)]
    pub no_entries: bool,
    /// Milliseconds the group waits for a silent member before moving its partitions
    /// [default: librdkafka's 45000].
    #[arg(long, env = "LEDGER_KAFKA_SESSION_TIMEOUT_MS")]
    pub session_timeout_ms: Option<u64>,
    /// Longest pause between polls (and the rebalance timeout the member announces), in
    /// milliseconds; must cover loading the largest partition [default: 600000].
    #[arg(long, env = "LEDGER_KAFKA_MAX_POLL_INTERVAL_MS")]
    pub max_poll_interval_ms: Option<u64>,
}

pub fn ingest(args: &IngestArgs) -> anyhow::Result<()> {
    let file = args.serve.file()?;
    let config = args.serve.resolve()?;
    let kafka = args.kafka.resolve(&file.kafka)?;
    let log = ledger_log::KafkaLog::connect(&kafka.options)
        .with_context(|| format!("connecting to Kafka topic {}", kafka.options.topic))?;
    tracing::info!(topic = %kafka.options.topic, partitions = log.partitions(), "kafka log ready");
    let log = Arc::new(log);
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        ledger_server::server::serve_ingest_on(
            listener,
            config,
            log.clone(),
            ledger_server::server::shutdown_signal(),
        )
        .await
    })?;
    // Everything acknowledged was delivered already; this only drains what was in flight.
    log.flush(std::time::Duration::from_secs(10))?;
    Ok(())
}

pub fn project(args: &ProjectArgs) -> anyhow::Result<()> {
    let file = args.serve.file()?;
    let config = args.serve.resolve()?;
    let kafka = args.kafka.resolve(&file.kafka)?;
    let mut group = ledger_projector::GroupOptions::new(
        kafka.options.clone(),
        kafka.group_id.clone(),
        config.data_dir.clone(),
    );
    group.entries_topic = (!args.no_entries).then(|| kafka.entries_topic.clone());
    group.batch_size = config.batch_size;
    group.ledger = config.ledger;
    group.session_timeout = args.session_timeout_ms.map(std::time::Duration::from_millis);
    if let Some(ms) = args.max_poll_interval_ms {
        group.max_poll_interval = std::time::Duration::from_millis(ms);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        ledger_server::server::serve_member_on(
            listener,
            config,
            group,
            kafka.peers.clone(),
            ledger_server::server::shutdown_signal(),
        )
        .await
    })
}
