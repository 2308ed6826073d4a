//! `ledger serve`, `import`, `replay` and `audit`: the commands that open a data directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use ledger_core::{LedgerConfig, RuleSettings};
use ledger_ingest::{Limits, Provider};
use ledger_log::{EmbeddedLog, EmbeddedLogOptions, EventLog};
use ledger_projector::{drain, rule_settings_for, EntryPricing, Projector, ProjectorError};
use ledger_server::ingest;
use ledger_server::server::{log_path, state_path};
use ledger_store::{Store, PROJECTOR};

use crate::config::{PricingArgs, RulesArgs, RulesFile, ServeArgs, DEFAULT_DATA_DIR};

/// The projector's pricing hook for the given cards and settings.
pub fn projection(pricing: &PricingArgs) -> anyhow::Result<Box<dyn EntryPricing>> {
    Ok(ledger_server::projection::projection_pricing(pricing.load()?))
}

pub fn serve(args: &ServeArgs) -> anyhow::Result<()> {
    let mut config = args.resolve()?;
    let requested = args.rules.requested(&args.file()?.rules)?;
    config.ledger.rules = settle_rules(&config.data_dir, requested, args.refold, &config.pricing)?;
    tracing::info!(secrets = ?config.secrets, "configuration loaded");
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(ledger_server::serve(config))
}

/// The rule settings to fold a data directory's state under: its recorded settings, which
/// `requested` must equal, or `requested` (else the defaults) for a new state. With `refold`, a
/// state folded under other settings is rebuilt from the log under the requested ones; the old
/// state is kept beside it as `state.before-refold-<unix seconds>` and its dead letters are
/// carried over.
pub fn settle_rules(
    data_dir: &Path,
    requested: Option<RuleSettings>,
    refold: bool,
    pricing: &Arc<ledger_pricing::Pricing>,
) -> anyhow::Result<RuleSettings> {
    let state = state_path(data_dir);
    if !state.exists() {
        return Ok(requested.unwrap_or_default());
    }
    let refusal = {
        let store = Store::open(&state).context("opening the state store")?;
        match rule_settings_for(&store, PROJECTOR, requested, false) {
            Ok(settings) => return Ok(settings),
            Err(ProjectorError::Rules(refusal)) => refusal,
            Err(other) => return Err(other.into()),
        }
    };
    if !refold {
        return Err(
            anyhow::Error::new(refusal).context(format!("opening the state in {}", data_dir.display()))
        );
    }
    let settings = requested.unwrap_or_default();
    tracing::warn!(%refusal, new = %settings, "re-folding the state from the log");
    let fresh = data_dir.join("state.refold");
    if fresh.exists() {
        std::fs::remove_dir_all(&fresh).with_context(|| format!("removing {}", fresh.display()))?;
    }
    {
        let log = EmbeddedLog::open(&log_path(data_dir), EmbeddedLogOptions::default())
            .context("opening the event log")?;
        let config = LedgerConfig { rules: settings, allowance_limit: None };
        let pricing = ledger_server::projection::projection_pricing(pricing.clone());
        rebuild(&log, &fresh, config, log.end_offset(), 65_536, false, pricing)?;
        log.close();
        let old = Store::open(&state).context("opening the state store")?;
        let new = Store::open(&fresh).context("opening the re-folded store")?;
        let mut letters = old.dead_letters(usize::MAX)?;
        letters.reverse(); // oldest first, so they keep their order
        for letter in &letters {
            new.put_dead_letter(letter)?;
        }
    }
    let unix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let kept = data_dir.join(format!("state.before-refold-{unix}"));
    std::fs::rename(&state, &kept).with_context(|| format!("moving the old state to {}", kept.display()))?;
    std::fs::rename(&fresh, &state).context("moving the re-folded state into place")?;
    eprintln!("re-folded the state under [{settings}]; the previous state is in {}", kept.display());
    Ok(settings)
}

/// The rule settings a read-only command answers under: the data directory's own, which
/// `requested` must equal.
pub fn stored_rules(store: &Store, requested: Option<RuleSettings>) -> anyhow::Result<RuleSettings> {
    Ok(rule_settings_for(store, PROJECTOR, requested, true)?)
}

/// What a progress bar counts: records, or the bytes of the input read.
#[derive(Clone, Copy)]
enum Counting {
    Records,
    Bytes,
}

fn progress_bar(label: &str, total: u64, counting: Counting) -> ProgressBar {
    let template = match counting {
        Counting::Records => "{msg} [{bar:40}] {pos}/{len} records ({per_sec}, eta {eta})",
        Counting::Bytes => "{msg} [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta})",
    };
    let bar = ProgressBar::new(total);
    bar.set_style(ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()));
    bar.set_message(label.to_owned());
    bar
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Files to import: webhook bodies (JSON, or JSON lines of bodies) with --provider, or
    /// JSON lines of normalized events without it.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// The provider whose webhook bodies the files hold (`send_records` for send records).
    #[arg(long)]
    pub provider: Option<Provider>,
    #[arg(long, env = "LEDGER_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// Post to a running server instead of opening the data directory.
    #[arg(long)]
    pub server: Option<String>,
    #[command(flatten)]
    pub rules: RulesArgs,
    /// When the data directory was folded under other rule settings, re-fold it from the log.
    #[arg(long)]
    pub refold: bool,
    /// No progress bars.
    #[arg(long)]
    pub quiet: bool,
    #[command(flatten)]
    pub pricing: PricingArgs,
}

/// Where in a file an input was: the whole file, or one of its lines.
#[derive(Debug, Clone, Copy)]
enum Unit {
    File,
    Line(usize),
}

impl Unit {
    fn source(self, path: &Path) -> String {
        match self {
            Unit::File => path.display().to_string(),
            Unit::Line(n) => format!("{}:{n}", path.display()),
        }
    }
}

/// The bodies (or normalized events) a file's bytes hold, each with where it came from.
fn units<'a>(path: &Path, bytes: &'a [u8], bodies: bool) -> Box<dyn Iterator<Item = (Unit, &'a [u8])> + 'a> {
    let lines = path.extension().is_some_and(|e| e == "jsonl" || e == "ndjson") || !bodies;
    if !lines {
        return Box::new(std::iter::once((Unit::File, bytes)));
    }
    Box::new(
        bytes
            .split(|b| *b == b'\n')
            .enumerate()
            .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace))
            .map(|(n, line)| (Unit::Line(n + 1), line)),
    )
}

pub fn import(args: &ImportArgs) -> anyhow::Result<()> {
    if let Some(server) = &args.server {
        return import_via_server(args, server);
    }
    let pricing = args.pricing.load()?;
    let requested = args.rules.requested(&RulesFile::default())?;
    let rules = settle_rules(&args.data_dir, requested, args.refold, &pricing)?;
    let log = EmbeddedLog::open(&log_path(&args.data_dir), EmbeddedLogOptions::default())
        .context("opening the event log (is `ledger serve` running on this data directory? use --server)")?;
    let store = Arc::new(Store::open(&state_path(&args.data_dir)).context("opening the state store")?);
    let limits = Limits::default();
    let mut totals = ImportTotals::default();
    let total_bytes =
        args.files.iter().filter_map(|path| std::fs::metadata(path).ok()).map(|m| m.len()).sum();
    let bar =
        if args.quiet { ProgressBar::hidden() } else { progress_bar("import", total_bytes, Counting::Bytes) };
    let started = std::time::Instant::now();
    // Groups are appended while the next one is parsed: the log syncs once per group.
    let mut in_flight: Option<SubmittedGroup> = None;
    for path in &args.files {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        let mut group = AppendGroup::default();
        for (unit, body) in units(path, &bytes, args.provider.is_some()) {
            let prepared = match args.provider {
                Some(provider) => ingest::prepare(provider, body, ingest::now(), &limits),
                None => normalized_event(body),
            };
            match prepared {
                Ok((records, ids, accepted)) => group.add(unit, records, ids, accepted),
                Err(refusal) => {
                    totals.refused += 1;
                    let source = unit.source(path);
                    bar.suspend(|| eprintln!("{source}: refused ({}): {}", refusal.status, refusal.reason));
                    ingest::keep_refused(&store, &format!("ledger import {source}"), &refusal, None, body)?;
                }
            }
            if group.records.len() >= IMPORT_GROUP_RECORDS {
                let full = std::mem::take(&mut group);
                if let Some(previous) = in_flight.replace(full.submit(&log, path)) {
                    previous.finish(&bar, &mut totals)?;
                }
            }
            bar.set_position(bar.position() + body.len() as u64 + 1);
        }
        if let Some(previous) = in_flight.replace(group.submit(&log, path)) {
            previous.finish(&bar, &mut totals)?;
        }
    }
    if let Some(last) = in_flight.take() {
        last.finish(&bar, &mut totals)?;
    }
    bar.finish_and_clear();
    let appended = started.elapsed();
    let mut projector = Projector::resume(
        &log,
        store,
        PROJECTOR,
        LedgerConfig { rules, allowance_limit: None },
        ledger_server::projection::projection_pricing(pricing),
        &mut |_, _| {},
    )?;
    let (start, end) = (projector.next_offset(), log.end_offset());
    let bar = if args.quiet {
        ProgressBar::hidden()
    } else {
        progress_bar("project", end - start, Counting::Records)
    };
    let report = drain(&mut projector, &log, 8192, end, &mut |done, _| bar.set_position(done - start))?;
    bar.finish_and_clear();
    let ImportTotals { new, duplicates, refused } = totals;
    if !args.quiet {
        let projected = started.elapsed() - appended;
        eprintln!(
            "import: appended in {:.2} s, projected {} records in {:.2} s",
            appended.as_secs_f64(),
            report.records,
            projected.as_secs_f64()
        );
    }
    println!(
        "imported: {new} new events, {duplicates} already in the log, {refused} refused (kept as dead letters); projected {} records into {} entries",
        report.records, report.entries
    );
    if refused > 0 {
        bail!("{refused} input(s) refused");
    }
    Ok(())
}

/// Records per append group of an import: one log sync covers them all.
const IMPORT_GROUP_RECORDS: usize = 8192;

#[derive(Debug, Default)]
struct ImportTotals {
    new: usize,
    duplicates: usize,
    refused: usize,
}

/// Prepared inputs appended together; each keeps its place so its answers can be told apart.
#[derive(Default)]
struct AppendGroup {
    records: Vec<ledger_log::LogRecord>,
    ids: Vec<ingest::EventIdOf>,
    /// Per input: where it came from, how many of the group's records are its, what it accepted.
    units: Vec<(Unit, usize, ingest::Accepted)>,
}

impl AppendGroup {
    fn add(
        &mut self,
        unit: Unit,
        records: Vec<ledger_log::LogRecord>,
        ids: Vec<ingest::EventIdOf>,
        accepted: ingest::Accepted,
    ) {
        self.units.push((unit, records.len(), accepted));
        self.records.extend(records);
        self.ids.extend(ids);
    }

    fn submit(self, log: &EmbeddedLog, path: &Path) -> SubmittedGroup {
        let AppendGroup { records, ids, units } = self;
        SubmittedGroup { ticket: log.append(records), ids, units, path: path.to_owned() }
    }
}

struct SubmittedGroup {
    ticket: ledger_log::AppendTicket,
    ids: Vec<ingest::EventIdOf>,
    units: Vec<(Unit, usize, ingest::Accepted)>,
    path: PathBuf,
}

impl SubmittedGroup {
    /// Waits for the group to be durable and counts what each input added.
    fn finish(self, bar: &ProgressBar, totals: &mut ImportTotals) -> anyhow::Result<()> {
        let answers = self.ticket.wait_blocking()?;
        let mut at = 0;
        for (unit, count, mut accepted) in self.units {
            let range = at..at + count;
            at += count;
            ingest::tally(&mut accepted, &self.ids[range.clone()], &answers[range]);
            totals.new += accepted.new;
            totals.duplicates += accepted.duplicates;
            for conflict in &accepted.conflicts {
                totals.refused += 1;
                let source = unit.source(&self.path);
                bar.suspend(|| eprintln!("{source}: refused (409): event {conflict}"));
            }
        }
        Ok(())
    }
}

type Prepared = (Vec<ledger_log::LogRecord>, Vec<ingest::EventIdOf>, ingest::Accepted);

fn normalized_event(line: &[u8]) -> Result<Prepared, ingest::Refusal> {
    let event: ledger_core::Event = serde_json::from_slice(line)
        .map_err(|e| ingest::Refusal { status: 400, reason: format!("not a normalized event: {e}") })?;
    event
        .validate()
        .map_err(|e| ingest::Refusal { status: 422, reason: format!("event {}: {e}", event.event_id) })?;
    Ok((
        vec![ingest::record_of(&event)],
        vec![ingest::EventIdOf(event.event_id.to_string())],
        ingest::Accepted { events: 1, ..Default::default() },
    ))
}

fn import_via_server(args: &ImportArgs, server: &str) -> anyhow::Result<()> {
    let Some(provider) = args.provider else {
        bail!("--server needs --provider: the API takes webhook bodies")
    };
    let url = match provider {
        Provider::SendRecords => format!("{}/v1/sends", server.trim_end_matches('/')),
        p => format!("{}/v1/webhooks/{}", server.trim_end_matches('/'), p.as_str()),
    };
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut refused = 0;
    for path in &args.files {
        let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        for (unit, body) in units(path, &bytes, true) {
            let source = unit.source(path);
            let mut response = agent.post(&url).header("content-type", "application/json").send(body)?;
            let status = response.status().as_u16();
            let text = response.body_mut().read_to_string().unwrap_or_default();
            if status != 200 {
                refused += 1;
                eprintln!("{source}: {status} {text}");
            } else {
                println!("{source}: {text}");
            }
        }
    }
    if refused > 0 {
        bail!("{refused} input(s) refused");
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    #[arg(long, env = "LEDGER_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// Where to build the fresh store [default: <data-dir>/state.rebuilt]; must not exist.
    #[arg(long)]
    pub into: Option<PathBuf>,
    /// Rule settings for the fresh store [default: the live state's own].
    #[command(flatten)]
    pub rules: RulesArgs,
    /// Records per batch.
    #[arg(long, default_value_t = 65_536)]
    pub batch_size: usize,
    #[arg(long)]
    pub quiet: bool,
    #[command(flatten)]
    pub pricing: PricingArgs,
}

/// Builds a fresh store from the log; returns its digest.
pub fn rebuild(
    log: &dyn EventLog,
    into: &Path,
    config: LedgerConfig,
    end: u64,
    batch_size: usize,
    quiet: bool,
    pricing: Box<dyn EntryPricing>,
) -> anyhow::Result<ledger_store::StateDigest> {
    if into.exists() {
        bail!("{} exists; replay builds a fresh store", into.display());
    }
    let store = Arc::new(Store::open(into)?);
    let mut projector = Projector::resume(log, store.clone(), PROJECTOR, config, pricing, &mut |_, _| {})?;
    let bar = if quiet { ProgressBar::hidden() } else { progress_bar("replay", end, Counting::Records) };
    let started = std::time::Instant::now();
    let report = drain(&mut projector, log, batch_size, end, &mut |done, _| bar.set_position(done))?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    if !quiet {
        eprintln!(
            "replayed {} records into {} entries in {seconds:.2}s ({:.0} records/s)",
            report.records,
            report.entries,
            report.records as f64 / seconds.max(1e-9)
        );
    }
    Ok(store.digest()?)
}

pub fn replay(args: &ReplayArgs) -> anyhow::Result<()> {
    let log = EmbeddedLog::open_read_only(&log_path(&args.data_dir)).context("opening the event log")?;
    let into = args.into.clone().unwrap_or_else(|| args.data_dir.join("state.rebuilt"));
    let requested = args.rules.requested(&RulesFile::default())?;
    let live = state_path(&args.data_dir);
    // A replay under other settings is how a state moves to them: the live state's settings
    // are only the default.
    let rules = match requested {
        Some(rules) => rules,
        None if live.exists() => Store::open_read_only(&live)?.rule_settings()?.unwrap_or_default(),
        None => RuleSettings::default(),
    };
    let config = LedgerConfig { rules, allowance_limit: None };
    let digest = rebuild(
        &log,
        &into,
        config,
        log.end_offset(),
        args.batch_size,
        args.quiet,
        projection(&args.pricing)?,
    )?;
    println!("{} state digest {}", into.display(), digest.combined());
    Ok(())
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    #[arg(long, env = "LEDGER_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    #[command(flatten)]
    pub rules: RulesArgs,
    #[arg(long)]
    pub quiet: bool,
    #[command(flatten)]
    pub pricing: PricingArgs,
}

/// Rebuilds the state from the log up to the offset the live store covers and compares
/// digests; a mismatch is an error (exit status 1).
pub fn audit(args: &AuditArgs) -> anyhow::Result<bool> {
    let log = EmbeddedLog::open_read_only(&log_path(&args.data_dir)).context("opening the event log")?;
    let live = Store::open_read_only(&state_path(&args.data_dir)).context("opening the state store")?;
    let covered = live.offset(PROJECTOR)?;
    let live_digest = live.digest()?;
    let scratch = tempfile::tempdir()?;
    // The rebuild folds under the live state's own settings: an audit proves a bill as it was made.
    let rules = stored_rules(&live, args.rules.requested(&RulesFile::default())?)?;
    let config = LedgerConfig { rules, allowance_limit: None };
    let rebuilt = rebuild(
        &log,
        &scratch.path().join("state"),
        config,
        covered,
        65_536,
        args.quiet,
        projection(&args.pricing)?,
    )?;
    println!("log records covered: {covered}");
    println!("incremental state digest: {}", live_digest.combined());
    println!("rebuilt state digest:     {}", rebuilt.combined());
    let differences = live_digest.differences(&rebuilt);
    if differences.is_empty() {
        println!("audit: match ({} events, {} live entries)", live_digest.events, live_digest.live_entries);
        Ok(true)
    } else {
        println!("audit: MISMATCH in {}", differences.join(", "));
        Ok(false)
    }
}
