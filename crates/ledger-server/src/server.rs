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

use crate::access::Access;
use crate::http::{router, AppState};
use crate::ingest::Secrets;
use crate::listener::{serve_http, ConnectionLimits};
use ledger_query::Queries;

use crate::health::ProjectorHealth;
use ledger_store::DeadLetterCaps;

#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub secrets: Secrets,
    pub limits: Limits,
    pub ledger: LedgerConfig,
    /// Most log records one projector batch takes.
    pub batch_size: usize,
    /// Bytes of contacts the projector keeps in memory in front of their stored states.
    pub state_cache_bytes: usize,
    /// Rate cards, markets and business settings.
    pub pricing: Arc<Pricing>,
    /// API tokens and their scopes (none: queries only from loopback).
    pub access: Access,
    /// Connection cap and timeouts.
    pub connections: ConnectionLimits,
    /// Expensive answers (`as_of`, reconcile, attribution) computed at once; more get 503.
    pub expensive_queries: usize,
    /// Caps on the kept refused input.
    pub dead_letter_caps: DeadLetterCaps,
}

/// Log records one projector batch takes unless configured otherwise.
pub const DEFAULT_BATCH_SIZE: usize = 8192;

/// Expensive answers at once unless configured otherwise: one per core of the machine this was
/// measured on; each `as_of` answer replays the log.
pub const DEFAULT_EXPENSIVE_QUERIES: usize = 2;

/// How long the projector waits before it tries a failed write again.
const WRITE_RETRY_PAUSE: Duration = Duration::from_secs(1);

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
            state_cache_bytes: ledger_projector::DEFAULT_STATE_CACHE_BYTES,
            pricing: Arc::new(Pricing::bundled()),
            access: Access::default(),
            connections: ConnectionLimits::default(),
            expensive_queries: DEFAULT_EXPENSIVE_QUERIES,
            dead_letter_caps: DeadLetterCaps::default(),
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
    // Flushes and compactions, like the stages, take the cores the answers leave.
    ledger_store::lower_background_priority();
    let log: Arc<EmbeddedLog> = Arc::new(
        EmbeddedLog::open(&log_path(&config.data_dir), EmbeddedLogOptions::default())
            .context("opening the event log")?,
    );
    let store = Arc::new(Store::open(&state_path(&config.data_dir)).context("opening the state store")?);
    store.set_dead_letter_caps(config.dead_letter_caps);
    let queries = Queries::new(store.clone(), config.pricing.clone()).with_log(log.clone(), config.ledger);
    let state = app_state(&config, log.clone(), queries.clone());

    // Webhooks are taken (and made durable) while the projector is still loading its state.
    tracing::info!(listen = %listener.local_addr()?, data_dir = %config.data_dir.display(), "serving");

    let stop = Arc::new(AtomicBool::new(false));
    let projector_thread = {
        let (log, store, stop) = (log.clone(), store.clone(), stop.clone());
        let (queries, health) = (queries.clone(), state.health.clone());
        let (ledger_config, batch_size, cache) = (config.ledger, config.batch_size, config.state_cache_bytes);
        let pricing = crate::projection::projection_pricing(config.pricing.clone());
        std::thread::Builder::new().name("projector".into()).spawn(move || {
            crate::priority::yield_to_queries();
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let stage = Stage { queries: &queries, health: &health, stop: &stop };
                run_projector(&*log, store, ledger_config, pricing, (batch_size, cache), stage)
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
                health.stopped(reason.clone());
                tracing::error!(%reason, "projector stopped; exiting");
                eprintln!("error: projector stopped: {reason}");
                std::process::exit(70);
            }
            outcome.unwrap_or_else(|_| Err(anyhow::anyhow!("the projector thread panicked")))
        })?
    };

    let app = router(state);
    serve_http(listener, app, config.connections, shutdown).await.context("HTTP server")?;
    stop.store(true, Ordering::SeqCst);
    match projector_thread.join() {
        Ok(result) => result?,
        Err(_) => anyhow::bail!("the projector thread panicked"),
    }
    log.close();
    tracing::info!("stopped");
    Ok(())
}

/// The routes' shared state for a server configured by `config`, with the process's metrics
/// recorder installed (the first server of a process installs it; later ones export nothing).
fn app_state(config: &ServeConfig, log: Arc<dyn EventLog>, queries: Queries) -> Arc<AppState> {
    Arc::new(AppState {
        log,
        queries,
        secrets: config.secrets.clone(),
        limits: config.limits,
        metrics: metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder().ok(),
        access: config.access.clone(),
        expensive: Arc::new(tokio::sync::Semaphore::new(config.expensive_queries.max(1))),
        refusals: crate::refusals::RefusalLimiter::default(),
        health: Arc::new(ProjectorHealth::default()),
    })
}

/// What the stage thread shares with the rest of the process.
struct Stage<'a> {
    /// Told the fold state once it is loaded.
    queries: &'a Queries,
    /// Told how the stage is doing (for `/readyz`).
    health: &'a Arc<ProjectorHealth>,
    /// Set when the process is stopping.
    stop: &'a Arc<AtomicBool>,
}

fn run_projector(
    log: &dyn EventLog,
    store: Arc<Store>,
    config: LedgerConfig,
    pricing: Box<dyn ledger_projector::EntryPricing>,
    (batch_size, state_cache_bytes): (usize, usize),
    Stage { queries, health, stop }: Stage<'_>,
) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let mut projector = Projector::resume(log, store, PROJECTOR, config, pricing, &mut |_, _| {})
        .context("loading projector state from the log")?;
    projector.set_state_cache(state_cache_bytes);
    // A write that fails (a full disk) is tried again until it lands; meanwhile `/readyz`
    // says why the answers are not current, and the process stays up to take webhooks.
    let retry_health = health.clone();
    let retry_stop = stop.clone();
    projector.retry_writes(Box::new(move |error, attempt| {
        retry_health.write_failing(error.to_string());
        metrics::counter!("ledger_projector_write_failures_total").increment(1);
        if attempt == 1 || attempt.is_multiple_of(60) {
            tracing::error!(%error, attempt, "state write failed; retrying");
        }
        std::thread::sleep(WRITE_RETRY_PAUSE);
        !retry_stop.load(Ordering::SeqCst)
    }));
    tracing::info!(
        offset = projector.next_offset(),
        seconds = started.elapsed().as_secs_f64(),
        "projector resumed"
    );
    queries.set_ledger(projector.ledger());
    while !stop.load(Ordering::SeqCst) {
        let end = log.wait_beyond(projector.next_offset(), Duration::from_millis(100));
        let lag = end.saturating_sub(projector.next_offset());
        metrics::gauge!("ledger_log_lag_records").set(lag as f64);
        health.progress(projector.next_offset(), lag);
        if end <= projector.next_offset() {
            continue;
        }
        if let Err(error) = projector.step(log, batch_size) {
            if stop.load(Ordering::SeqCst) {
                // Told to stop while a write was being retried: the store has the offset of the
                // last batch that landed, and the log everything after it.
                break;
            }
            // A read of the log failed, or a write was given up: memory may be ahead of the
            // store. Stop (the thread's caller exits the process); a restart resumes from the
            // store's offset, and every acknowledged webhook is still in the log.
            return Err(anyhow::Error::new(error).context("projecting a batch"));
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
    store.set_dead_letter_caps(config.dead_letter_caps);
    let state = app_state(&config, log, Queries::new(store, config.pricing.clone()));
    tracing::info!(listen = %listener.local_addr()?, "ingest worker serving");
    let app = crate::partitioned::ingest_router(state);
    serve_http(listener, app, config.connections, shutdown).await.context("HTTP server")?;
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
    let mut member =
        ledger_projector::GroupMember::join(group, crate::projection::partition_pricing(pricing))
            .context("joining the projector group")?;
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder().ok();
    let health = Arc::new(ProjectorHealth::default());
    let state = Arc::new(crate::partitioned::MemberState {
        ownership: member.ownership(),
        pricing: config.pricing.clone(),
        partitions,
        peers,
        metrics,
        access: config.access.clone(),
        health: health.clone(),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let worker = {
        let stop = stop.clone();
        std::thread::Builder::new().name("projector".into()).spawn(move || {
            crate::priority::yield_to_queries();
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let mut rounds = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    member.round(Duration::from_millis(100))?;
                    rounds += 1;
                    health.progress(rounds, 0);
                }
                Ok::<(), ledger_projector::ProjectorError>(())
            }));
            let failure = match &outcome {
                Ok(Ok(())) => None,
                Ok(Err(error)) => Some(error.to_string()),
                Err(_) => Some("the projector thread panicked".to_owned()),
            };
            if let Some(reason) = failure.filter(|_| !stop.load(Ordering::SeqCst)) {
                // Memory may be ahead of the stores, and HTTP would answer from frozen state:
                // exit so a supervisor restarts the member; it resumes from the stored offsets.
                health.stopped(reason.clone());
                tracing::error!(%reason, "projector group member failed; exiting");
                eprintln!("error: projector group member failed: {reason}");
                std::process::exit(70);
            }
            member.close();
            outcome.unwrap_or(Ok(()))
        })?
    };
    tracing::info!(listen = %listener.local_addr()?, partitions, "projector member serving");
    let app = crate::partitioned::member_router(state);
    let outcome = serve_http(listener, app, config.connections, shutdown).await.context("HTTP server");
    stop.store(true, Ordering::SeqCst);
    match worker.join() {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            tracing::error!(%error, "projector group member failed");
            return Err(error.into());
        }
        Err(_) => anyhow::bail!("the projector thread panicked"),
    }
    outcome
}
