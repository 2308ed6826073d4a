//! `ledger serve`: the embedded log, the projector thread and the HTTP API in one process.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use ledger_core::LedgerConfig;
use ledger_ingest::Limits;
use ledger_log::{EmbeddedLog, EmbeddedLogOptions, EventLog};
use ledger_pricing::Pricing;
use ledger_projector::Projector;
use ledger_store::{Store, PROJECTOR};

use crate::http::{router, AppState};
use crate::ingest::Secrets;
use crate::queries::Queries;

#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub secrets: Secrets,
    pub limits: Limits,
    pub ledger: LedgerConfig,
    /// Most log records one projector batch takes.
    pub batch_size: usize,
    /// Rate cards, markets and business settings.
    pub pricing: Arc<Pricing>,
}

/// Log records one projector batch takes unless configured otherwise.
pub const DEFAULT_BATCH_SIZE: usize = 8192;

impl ServeConfig {
    /// A server on `listen` keeping its data under `data_dir`, with every other setting at its
    /// default: no webhook secrets, default limits and ledger settings, the bundled rate cards.
    pub fn new(listen: SocketAddr, data_dir: PathBuf) -> ServeConfig {
        ServeConfig {
            listen,
            data_dir,
            secrets: Secrets::default(),
            limits: Limits::default(),
            ledger: LedgerConfig::default(),
            batch_size: DEFAULT_BATCH_SIZE,
            pricing: Arc::new(Pricing::bundled()),
        }
    }
}

/// Where the log and the state live under a data directory.
pub fn log_path(data_dir: &Path) -> PathBuf {
    data_dir.join("log")
}

pub fn state_path(data_dir: &Path) -> PathBuf {
    data_dir.join("state")
}

/// Runs until SIGINT/SIGTERM; then stops taking requests, lets the projector finish its batch
/// and closes the log.
pub async fn serve(config: ServeConfig) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    serve_on(listener, config, shutdown_signal()).await
}

/// Serves on a bound listener until `shutdown` resolves (benchmarks and tests pick the port).
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    config: ServeConfig,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    let log: Arc<EmbeddedLog> = Arc::new(
        EmbeddedLog::open(&log_path(&config.data_dir), EmbeddedLogOptions::default())
            .context("opening the event log")?,
    );
    let store = Arc::new(Store::open(&state_path(&config.data_dir)).context("opening the state store")?);
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder().ok();
    let queries = Queries::new(store.clone(), config.pricing.clone()).with_log(log.clone(), config.ledger);
    let state = Arc::new(AppState {
        log: log.clone(),
        queries: queries.clone(),
        secrets: config.secrets.clone(),
        limits: config.limits,
        metrics,
    });

    // Webhooks are taken (and made durable) while the projector is still loading its state.
    tracing::info!(listen = %listener.local_addr()?, data_dir = %config.data_dir.display(), "serving");

    let stop = Arc::new(AtomicBool::new(false));
    let projector_thread = {
        let (log, store, stop, queries) = (log.clone(), store.clone(), stop.clone(), queries.clone());
        let (ledger_config, batch_size) = (config.ledger, config.batch_size);
        let pricing = crate::billing::projection_pricing(config.pricing.clone());
        std::thread::Builder::new().name("projector".into()).spawn(move || {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                run_projector(&*log, store, ledger_config, pricing, batch_size, &stop, &queries)
            }));
            // A projector that stops before it is told to leaves HTTP answering from frozen state:
            // exit instead, so a supervisor restarts the process (nothing acknowledged is lost;
            // the log has it).
            let failure = match &outcome {
                Ok(Ok(())) => None,
                Ok(Err(error)) => Some(format!("{error:#}")),
                Err(_) => Some("the projector thread panicked".to_owned()),
            };
            if let Some(reason) = failure.filter(|_| !stop.load(Ordering::SeqCst)) {
                tracing::error!(%reason, "projector stopped; exiting");
                eprintln!("error: projector stopped: {reason}");
                std::process::exit(70);
            }
            outcome.unwrap_or_else(|_| Err(anyhow::anyhow!("the projector thread panicked")))
        })?
    };

    let app = router(state);
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await.context("HTTP server")?;
    stop.store(true, Ordering::SeqCst);
    match projector_thread.join() {
        Ok(result) => result?,
        Err(_) => anyhow::bail!("the projector thread panicked"),
    }
    log.close();
    tracing::info!("stopped");
    Ok(())
}

fn run_projector(
    log: &dyn EventLog,
    store: Arc<Store>,
    config: LedgerConfig,
    pricing: Box<dyn ledger_projector::EntryPricing>,
    batch_size: usize,
    stop: &AtomicBool,
    queries: &Queries,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let mut projector = Projector::resume(log, store, PROJECTOR, config, pricing, &mut |_, _| {})
        .context("loading projector state from the log")?;
    tracing::info!(
        offset = projector.next_offset(),
        seconds = started.elapsed().as_secs_f64(),
        "projector resumed"
    );
    queries.set_ledger(projector.ledger());
    while !stop.load(Ordering::SeqCst) {
        let end = log.wait_beyond(projector.next_offset(), Duration::from_millis(100));
        metrics::gauge!("ledger_log_lag_records").set(end.saturating_sub(projector.next_offset()) as f64);
        if end <= projector.next_offset() {
            continue;
        }
        if let Err(error) = projector.step(log, batch_size) {
            // The batch's events are folded in memory but neither they nor their offset were
            // written: memory is ahead of the store. Stop; a restart resumes from the store's
            // offset, and every acknowledged webhook is still in the log.
            tracing::error!(%error, "projector batch could not be written; stopping");
            std::process::exit(70);
        }
    }
    Ok(())
}

pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

/// Kafka mode's ingest worker: the webhook API in front of the Kafka log. Refused bodies are
/// kept in a local dead-letter store under `data_dir`; nothing else is kept here.
pub async fn serve_ingest_on(
    listener: tokio::net::TcpListener,
    config: ServeConfig,
    log: Arc<dyn EventLog>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("creating data directory {}", config.data_dir.display()))?;
    let dead_letters = config.data_dir.join("dead-letters");
    let store = Arc::new(Store::open(&dead_letters).context("opening the dead-letter store")?);
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder().ok();
    let state = Arc::new(AppState {
        log,
        queries: Queries::new(store, config.pricing.clone()),
        secrets: config.secrets.clone(),
        limits: config.limits,
        metrics,
    });
    tracing::info!(listen = %listener.local_addr()?, "ingest worker serving");
    let app = crate::partitioned::ingest_router(state);
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await.context("HTTP server")?;
    Ok(())
}

/// Kafka mode's projector member: a consumer-group member projecting the partitions it owns,
/// with the query API for them. Stops (leaving the group) when `shutdown` resolves.
pub async fn serve_member_on(
    listener: tokio::net::TcpListener,
    config: ServeConfig,
    group: ledger_projector::GroupOptions,
    peers: Vec<String>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let partitions = {
        use rdkafka::consumer::Consumer;
        let probe: rdkafka::consumer::BaseConsumer =
            group.kafka.consumer_config().create().context("connecting to Kafka")?;
        ledger_log::partition_count(probe.client(), &group.kafka.topic, Duration::from_secs(30))
            .context("reading the events topic's partitions")?
    };
    let pricing = config.pricing.clone();
    let mut member = ledger_projector::GroupMember::join(group, crate::billing::partition_pricing(pricing))
        .context("joining the projector group")?;
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder().ok();
    let state = Arc::new(crate::partitioned::MemberState {
        ownership: member.ownership(),
        pricing: config.pricing.clone(),
        partitions,
        peers,
        metrics,
    });
    let stop = Arc::new(AtomicBool::new(false));
    let worker = {
        let stop = stop.clone();
        std::thread::Builder::new().name("projector".into()).spawn(move || {
            let result = member.run(&stop);
            member.close();
            result
        })?
    };
    tracing::info!(listen = %listener.local_addr()?, partitions, "projector member serving");
    let app = crate::partitioned::member_router(state);
    let server = axum::serve(listener, app).with_graceful_shutdown(shutdown);
    let outcome = server.await.context("HTTP server");
    stop.store(true, Ordering::SeqCst);
    match worker.join() {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            // Memory may be ahead of the stores: stop; a restart resumes from the stored offsets.
            tracing::error!(%error, "projector group member failed");
            return Err(error.into());
        }
        Err(_) => anyhow::bail!("the projector thread panicked"),
    }
    outcome
}
