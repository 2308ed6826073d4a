//! `ledger-bench`: end-to-end figures for BENCHMARKS.md.
//!
//! - `pipeline`: synthetic webhooks → normalize → embedded log (durable), then the projector
//!   drains the log into RocksDB (events/s), then a replay builds a fresh store from the log.
//! - `http`: an in-process `ledger serve`; concurrent clients post real-shaped Meta status
//!   webhooks (acknowledged only once durable) for a while, then eligibility requests are sent
//!   at a fixed rate while webhooks keep the projector busy, and their latency is recorded.
//! - `kafka`: Kafka mode, webhooks → ingest worker → 4 partitions → two projector members,
//!   against a plain consumer's drain rate (`kafka.rs`).

mod kafka;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, Subcommand};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use ledger_core::{LedgerConfig, Timestamp};
use ledger_ingest::{Limits, Provider};
use ledger_log::{EmbeddedLog, EmbeddedLogOptions, EventLog};
use ledger_projector::{drain, Projector};
use ledger_server::projection::projection_pricing;
use ledger_store::{Store, PROJECTOR};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Projector and replay throughput from the embedded log into RocksDB.
    Pipeline {
        /// Contacts in the synthetic day (about 8 events each).
        #[arg(long, default_value_t = 100_000)]
        contacts: usize,
        /// Megabytes of contacts the projector keeps in memory (as `ledger serve
        /// --state-cache-mb`).
        #[arg(long, default_value_t = ledger_projector::DEFAULT_STATE_CACHE_BYTES >> 20)]
        state_cache_mb: usize,
        /// `timely`: in time order, each webhook up to five minutes late, as providers deliver;
        /// `shuffled`: in random order over the day (the worst case for the contact cache).
        #[arg(long, default_value = "timely", value_parser = ["timely", "shuffled"])]
        arrival: String,
    },
    /// Webhook ingest over HTTP, then eligibility latency under load.
    Http {
        #[arg(long, default_value_t = 64)]
        connections: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Eligibility requests per second in the latency phase.
        #[arg(long, default_value_t = 5_000)]
        rate: u64,
    },
    /// Kafka mode: HTTP ingest into Kafka, two projector members, and a plain consumer's rate.
    Kafka {
        /// Bootstrap servers; without them a Tansu broker is started on a loopback port.
        #[arg(long)]
        brokers: Option<String>,
        #[arg(long, default_value_t = 20_000)]
        contacts: usize,
        #[arg(long, default_value_t = 32)]
        connections: usize,
    },
    /// Writes a synthetic day of traffic as normalized events, one JSON line each, for
    /// `ledger import` (BENCHMARKS.md times the import).
    Events {
        #[arg(long, default_value_t = 100_000)]
        contacts: usize,
        /// Where to write the lines.
        #[arg(long)]
        out: std::path::PathBuf,
        /// The day's start, Unix seconds [default: 2025-09-01, per-message pricing; era 5's
        /// service allowance from 2026-10-01 on].
        #[arg(long, default_value_t = 1_756_684_800)]
        start: i64,
    },
    /// A month's invoice of one WABA read from the `billing` aggregates.
    Invoice {
        #[arg(long, default_value_t = 1_000_000)]
        contacts: usize,
        /// Priced per-message entries in the month.
        #[arg(long, default_value_t = 10_000_000)]
        entries: usize,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Pipeline { contacts, state_cache_mb, arrival } => {
            let arrival = match arrival.as_str() {
                "shuffled" => ledger_bench::Arrival::Shuffled,
                _ => ledger_bench::Arrival::Timely { lateness: 300 },
            };
            pipeline(contacts, state_cache_mb << 20, arrival)
        }
        Command::Invoice { contacts, entries } => invoice(contacts, entries),
        Command::Events { contacts, out, start } => events(contacts, &out, start),
        Command::Kafka { brokers, contacts, connections } => {
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            runtime.block_on(kafka::run(brokers, contacts, connections))
        }
        Command::Http { connections, seconds, rate } => {
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            runtime.block_on(http(connections, seconds, rate))
        }
    }
}

/// Projects the whole log into a fresh store at `path`; returns it, the report and the seconds
/// the projection took.
fn project_into(
    log: &EmbeddedLog,
    path: &std::path::Path,
    batch_size: usize,
    state_cache_bytes: usize,
) -> anyhow::Result<(Arc<Store>, ledger_projector::BatchReport, f64)> {
    let store = Arc::new(Store::open(path)?);
    let mut projector = Projector::resume(
        log,
        store.clone(),
        PROJECTOR,
        LedgerConfig::default(),
        projection_pricing(Arc::new(ledger_pricing::Pricing::bundled())),
        &mut |_, _| {},
    )?;
    projector.set_state_cache(state_cache_bytes);
    let started = Instant::now();
    let report = drain(&mut projector, log, batch_size, log.end_offset(), &mut |_, _| {})?;
    Ok((store, report, started.elapsed().as_secs_f64()))
}

fn pipeline(contacts: usize, state_cache_bytes: usize, arrival: ledger_bench::Arrival) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let start = 1_756_684_800; // 2025-09-01, per-message pricing.
    let webhooks = ledger_bench::traffic_arriving(7, contacts, start, arrival);
    println!("traffic: {contacts} contacts arriving {arrival:?}");
    let log = Arc::new(EmbeddedLog::open(&dir.path().join("log"), EmbeddedLogOptions::default())?);
    let limits = Limits::default();
    let loaded = Instant::now();
    let mut pending = Vec::new();
    // Received over the day and the hours after it, in log order (as `ledger serve` appends):
    // the instants `as_of` answers are asked at below.
    let received_at = |n: usize| Timestamp(start + (n as i64 * 100_000) / webhooks.len().max(1) as i64);
    for (c, chunk) in webhooks.chunks(256).enumerate() {
        let mut records = Vec::new();
        for (w, webhook) in chunk.iter().enumerate() {
            let (mut r, _, _) = ledger_server::ingest::prepare(
                Provider::MetaCloud,
                webhook.body.as_bytes(),
                received_at(c * 256 + w),
                &limits,
            )
            .map_err(|r| anyhow::anyhow!(r.reason))?;
            records.append(&mut r);
        }
        pending.push(log.append(records));
    }
    for ticket in pending {
        ticket.wait_blocking()?;
    }
    let events = log.end_offset();
    println!(
        "log: {} webhooks → {events} events appended durably in {:.2}s",
        webhooks.len(),
        loaded.elapsed().as_secs_f64()
    );
    // The generated traffic is in the log now: what stays resident from here is the stages'.
    drop(webhooks);
    println!("memory: {} MiB resident before the projection", resident_kib().unwrap_or(0) / 1024);

    let batch = ledger_server::server::DEFAULT_BATCH_SIZE;
    let (store, report, seconds) = project_into(&log, &dir.path().join("state"), batch, state_cache_bytes)?;
    println!(
        "projector: {} events → {} entries in {seconds:.2}s = {:.0} events/s (batches of {batch}, written in chunks of {} while the next is folded)",
        report.records,
        report.entries,
        report.records as f64 / seconds,
        ledger_projector::PIPELINE_CHUNK
    );
    println!(
        "memory: {} MiB resident after the projection ({} MiB of contacts kept in memory)",
        resident_kib().unwrap_or(0) / 1024,
        state_cache_bytes >> 20
    );
    let projected_digest = store.digest()?;
    as_of_answers(&log, store.clone(), contacts, start)?;

    let (replay_store, report, seconds) =
        project_into(&log, &dir.path().join("replayed"), 65_536, state_cache_bytes)?;
    println!(
        "replay: {} events into a fresh store in {seconds:.2}s = {:.0} events/s (batches of 65536)",
        report.records,
        report.records as f64 / seconds
    );
    let resumed_at = Instant::now();
    let resumed = Projector::resume(
        &*log,
        store,
        PROJECTOR,
        LedgerConfig::default(),
        projection_pricing(Arc::new(ledger_pricing::Pricing::bundled())),
        &mut |_, _| {},
    )?;
    let seconds = resumed_at.elapsed().as_secs_f64();
    let resident = resumed.ledger().read().map_or(0, |ledger| ledger.resident_contacts());
    println!(
        "restart: a projector over the store of {} logged events ready in {:.1} ms ({resident} contacts \
         in memory; the others load when needed)",
        resumed.next_offset(),
        seconds * 1e3
    );
    println!("memory: {} MiB resident after the restart", resident_kib().unwrap_or(0) / 1024);
    anyhow::ensure!(
        replay_store.digest()? == projected_digest,
        "replayed state differs from projected state"
    );
    println!("replayed digest equals projected digest: {}", projected_digest.combined());
    Ok(())
}

/// Times answers as of earlier instants on the projected store: eligibility of random contacts
/// (folded from their stored events received by then), and the month's invoice and usage
/// (from the store's history).
fn as_of_answers(
    log: &Arc<EmbeddedLog>,
    store: Arc<Store>,
    contacts: usize,
    start: i64,
) -> anyhow::Result<()> {
    use ledger_bench::{PHONE_NUMBER_ID, WABA_ID};
    let pricing = Arc::new(ledger_pricing::Pricing::bundled());
    let log: Arc<dyn EventLog> = log.clone();
    let queries = ledger_query::Queries::new(store, pricing).with_log(log, LedgerConfig::default());
    let mut rng = fastrand::Rng::with_seed(11);
    let mut eligibility = hdrhistogram::Histogram::<u64>::new(3)?;
    for _ in 0..200 {
        let user = format!("1650555{:07}", rng.usize(0..contacts.max(1)));
        let as_of = Timestamp(start + rng.i64(3_600..100_000));
        let asked = Instant::now();
        queries.eligibility_as_of(PHONE_NUMBER_ID, &user, as_of, Some(WABA_ID), as_of)?;
        eligibility.record(asked.elapsed().as_micros() as u64)?;
    }
    println!(
        "as_of eligibility (200 random contacts and instants): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        eligibility.value_at_quantile(0.5) as f64 / 1e3,
        eligibility.value_at_quantile(0.99) as f64 / 1e3,
        eligibility.max() as f64 / 1e3
    );
    for hours in [2, 8, 14, 20, 27] {
        let as_of = Timestamp(start + hours * 3_600 + 1_234);
        let asked = Instant::now();
        let invoice = queries.invoice(WABA_ID, "2025-09", Some(as_of))?;
        let invoice_ms = asked.elapsed().as_secs_f64() * 1e3;
        let asked = Instant::now();
        let usage = queries.usage_as_of(WABA_ID, "2025-09", as_of)?;
        let usage_ms = asked.elapsed().as_secs_f64() * 1e3;
        println!(
            "as_of {as_of}: invoice {invoice_ms:.1} ms ({} lines, {} units), usage {usage_ms:.1} ms ({} messages)",
            invoice.lines.len(),
            invoice.totals.count,
            usage.messages
        );
    }
    Ok(())
}

/// Normalizes the pipeline's synthetic day and writes its events as JSON lines.
fn events(contacts: usize, out: &std::path::Path, start: i64) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut file = std::io::BufWriter::new(std::fs::File::create(out)?);
    let limits = Limits::default();
    let mut written = 0usize;
    for (n, webhook) in ledger_bench::traffic(7, contacts, start).iter().enumerate() {
        // Received in the order they are written, a second apart per thousand.
        let received = Timestamp(start + 86_400 + n as i64 / 1_000);
        let normalized =
            ledger_ingest::normalize(Provider::MetaCloud, webhook.body.as_bytes(), received, &limits)
                .map_err(|e| anyhow::anyhow!("synthetic webhook refused: {e}"))?;
        for event in &normalized.events {
            serde_json::to_writer(&mut file, event)?;
            file.write_all(b"\n")?;
            written += 1;
        }
    }
    file.flush()?;
    eprintln!("events: {written} normalized events of {contacts} contacts in {}", out.display());
    Ok(())
}

/// Resident set size of this process (Linux), in KiB.
fn resident_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

type Client = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(addr: std::net::SocketAddr) -> anyhow::Result<Client> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

async fn request(client: &mut Client, method: &str, uri: &str, body: Bytes) -> anyhow::Result<u16> {
    client.ready().await?;
    let request = hyper::Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Full::new(body))?;
    let response = client.send_request(request).await?;
    let status = response.status().as_u16();
    response.into_body().collect().await?;
    Ok(status)
}

/// Posts webhooks from `bodies` round-robin on `connections` clients until `stop`.
fn spawn_posters(
    addr: std::net::SocketAddr,
    connections: usize,
    bodies: Arc<Vec<Bytes>>,
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicU64>,
) -> Vec<tokio::task::JoinHandle<anyhow::Result<()>>> {
    let next = Arc::new(AtomicU64::new(0));
    (0..connections)
        .map(|_| {
            let (bodies, stop, acked, next) = (bodies.clone(), stop.clone(), acked.clone(), next.clone());
            tokio::spawn(async move {
                let mut client = connect(addr).await?;
                while !stop.load(Ordering::Relaxed) {
                    let n = next.fetch_add(1, Ordering::Relaxed) as usize;
                    let status = request(
                        &mut client,
                        "POST",
                        "/v1/webhooks/meta_cloud",
                        bodies[n % bodies.len()].clone(),
                    )
                    .await?;
                    anyhow::ensure!(status == 200, "webhook answered {status}");
                    acked.fetch_add(1, Ordering::Relaxed);
                }
                Ok(())
            })
        })
        .collect()
}

async fn http(connections: usize, seconds: u64, rate: u64) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let config = ledger_server::ServeConfig::new(addr, dir.path().to_owned());
    let (stop_server, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(ledger_server::server::serve_on(listener, config, async {
        let _ = stopped.await;
    }));
    let mut probe = loop {
        if let Ok(client) = connect(addr).await {
            break client;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    while request(&mut probe, "GET", "/readyz", Bytes::new()).await? != 200 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Phase 1: ingest throughput with durable acknowledgements.
    let bodies: Arc<Vec<Bytes>> =
        Arc::new(ledger_bench::statuses(11, 2_000_000, 1_756_684_800).into_iter().map(Bytes::from).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let posters = spawn_posters(addr, connections, bodies.clone(), stop.clone(), acked.clone());
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for poster in posters {
        poster.await??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let total = acked.load(Ordering::Relaxed);
    println!(
        "ingest: {total} Meta status webhooks acknowledged (durable) in {elapsed:.2}s = {:.0} webhooks/s over {connections} connections",
        total as f64 / elapsed
    );

    // Phase 2: eligibility latency at a fixed rate while webhooks keep the projector busy.
    let stop = Arc::new(AtomicBool::new(false));
    let background = spawn_posters(addr, connections / 2, bodies, stop.clone(), Arc::new(AtomicU64::new(0)));
    let mut histogram = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 10_000_000, 3)?;
    let askers = 16;
    let per_asker = Duration::from_secs_f64(askers as f64 / rate as f64);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for a in 0..askers {
        tasks.push(tokio::spawn(async move {
            let mut client = connect(addr).await?;
            let mut latencies = Vec::new();
            let mut next_at = Instant::now() + per_asker.mul_f64(a as f64 / askers as f64);
            let mut n = a;
            while Instant::now() < deadline {
                tokio::time::sleep_until(next_at.into()).await;
                // Latency is measured from the intended send time: a stalled server cannot
                // hide its queueing delay (no coordinated omission).
                let intended = next_at;
                next_at += per_asker;
                let uri = format!(
                    "/v1/contacts/{}/1650555{:07}/eligibility?at=1756700000",
                    ledger_bench::PHONE_NUMBER_ID,
                    n % 100_000
                );
                n += askers;
                let status = request(&mut client, "GET", &uri, Bytes::new()).await?;
                anyhow::ensure!(status == 200, "eligibility answered {status}");
                latencies.push(intended.elapsed().as_micros() as u64);
            }
            Ok::<_, anyhow::Error>(latencies)
        }));
    }
    for task in tasks {
        for latency in task.await?? {
            histogram.record(latency.max(1))?;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for poster in background {
        poster.await??;
    }
    println!(
        "eligibility at {rate}/s with the projector busy: {} requests, p50 {} µs, p99 {} µs, p99.9 {} µs, max {} µs",
        histogram.len(),
        histogram.value_at_quantile(0.5),
        histogram.value_at_quantile(0.99),
        histogram.value_at_quantile(0.999),
        histogram.max()
    );
    let _ = stop_server.send(());
    server.await?.context("server")?;
    Ok(())
}

/// One synthetic per-message entry of September 2025 (era 4): categories and charges in the
/// proportions of a busy sender, recipients in India, Brazil and the US.
fn synthetic_entry(i: usize, contacts: usize, at: i64) -> ledger_core::Entry {
    use ledger_core::fact::{
        BillingContext, Charge, ClassSource, Classification, Fact, FreeReason, MessageBilled,
    };
    use ledger_core::{Era, MessageClass, PricingCategory, PricingModel, PricingType, TemplateCategory};
    let contact = i % contacts;
    let user = match contact % 10 {
        0..=6 => format!("91{:010}", 9_000_000_000u64 + contact as u64),
        7 | 8 => format!("5511{:09}", 900_000_000u64 + contact as u64),
        _ => format!("1415{:07}", contact % 10_000_000),
    };
    let (category, class, billable, free_reason, pricing_type) = match i % 20 {
        0..=7 => (
            PricingCategory::Marketing,
            MessageClass::Template(TemplateCategory::Marketing),
            true,
            None,
            PricingType::Regular,
        ),
        8..=11 => (
            PricingCategory::Utility,
            MessageClass::Template(TemplateCategory::Utility),
            true,
            None,
            PricingType::Regular,
        ),
        12..=13 => (
            PricingCategory::Utility,
            MessageClass::Template(TemplateCategory::Utility),
            false,
            Some(FreeReason::CustomerServiceWindow),
            PricingType::FreeCustomerService,
        ),
        14..=15 => (
            PricingCategory::Authentication,
            MessageClass::Template(TemplateCategory::Authentication),
            true,
            None,
            PricingType::Regular,
        ),
        16..=18 => (
            PricingCategory::Service,
            MessageClass::NonTemplate,
            false,
            Some(FreeReason::NonTemplate),
            PricingType::FreeCustomerService,
        ),
        _ => (
            PricingCategory::ReferralConversion,
            MessageClass::Template(TemplateCategory::Marketing),
            false,
            Some(FreeReason::EntryPoint),
            PricingType::FreeEntryPoint,
        ),
    };
    let fact = Fact::MessageBilled(MessageBilled {
        message_id: format!("wamid.bench.{i}").as_str().into(),
        era: Era::PerMessage,
        pricing_model: PricingModel::Pmp,
        delivered_at: ledger_core::Timestamp(at),
        category,
        charge: if billable { Charge::Billable } else { Charge::Free(free_reason.expect("free")) },
        conversation: None,
        classification: Classification {
            class: Some(class),
            source: ClassSource::SendRecord,
            template_name: None,
            template_language: None,
            declared_category: None,
        },
        reported: None,
        participants: Vec::new(),
        tokens: None,
        context: BillingContext {
            waba_id: "bench-waba".into(),
            contact: ledger_core::ContactKey::new("bench-phone", &user),
            recipient: Some(user.as_str().into()),
            local_month: ledger_core::LocalMonth { year: 2025, month: 9 },
            time_zone: "UTC".into(),
            time_zone_assumed: false,
        },
        rules: ledger_core::rules::RulePath::new(),
        evidence: Vec::new(),
    });
    ledger_core::Entry {
        id: ledger_core::Id128(i as u128),
        action: ledger_core::EntryAction::Post,
        reverses: None,
        billable,
        free_reason,
        pricing_type: Some(pricing_type),
        fact: Arc::new(fact),
    }
}

/// Prices `entries` synthetic entries into the `billing` aggregates of a fresh store, as the
/// projector does, then times the month's invoice read from them.
fn invoice(contacts: usize, entries: usize) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = Arc::new(Store::open(&dir.path().join("state"))?);
    let pricing = Arc::new(ledger_pricing::Pricing::bundled());
    let mut pricer = ledger_pricing::Pricer::new(pricing.clone());
    let september_2025 = 1_756_684_800i64;
    let month_seconds = 30 * 86_400;
    let started = Instant::now();
    let batch_size = 100_000;
    let mut done = 0;
    while done < entries {
        let mut batch = store.batch();
        for i in done..(done + batch_size).min(entries) {
            let at = september_2025 + (i as i64 * month_seconds) / entries as i64;
            let entry = synthetic_entry(i, contacts, at);
            for priced in pricer.price(&entry) {
                batch.add_billing(
                    &priced.waba_id,
                    &priced.month.to_string(),
                    &priced.line.encode(),
                    priced.quantity,
                    None,
                );
            }
        }
        done = (done + batch_size).min(entries);
        store.commit(batch, "bench", done as u64)?;
    }
    let priced_seconds = started.elapsed().as_secs_f64();
    println!(
        "priced {entries} entries of {contacts} contacts into the billing aggregates in {priced_seconds:.1}s ({:.0} entries/s)",
        entries as f64 / priced_seconds
    );
    let queries = ledger_query::Queries::new(store, pricing);
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..21 {
        let started = Instant::now();
        let invoice = queries.invoice("bench-waba", "2025-09", None)?;
        times.push(started.elapsed().as_secs_f64() * 1e3);
        last = Some(invoice);
    }
    times.sort_by(f64::total_cmp);
    let invoice = last.expect("21 runs");
    println!(
        "invoice 2025-09: {} lines, {} units, {} charged, total {} {}; read in median {:.2} ms (min {:.2}, max {:.2}) over 21 runs",
        invoice.lines.len(),
        invoice.totals.count,
        invoice.totals.charged,
        invoice.totals.amount,
        invoice.currency,
        times[10],
        times[0],
        times[20]
    );
    Ok(())
}
