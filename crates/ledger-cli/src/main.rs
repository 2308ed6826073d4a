//! `ledger`: the command-line entry point. Thin by design: argument parsing here, the work in
//! the library crates and one module per subcommand.

mod config;
mod eligibility;
mod fold;
mod kafka_mode;
mod normalize;
mod query;
mod reconcile;
mod store_ops;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc keeps freed memory for reuse instead of returning it to the kernel page by page;
/// the fold allocates many small, short-lived objects and runs markedly faster with it
/// (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "ledger",
    version,
    about = "Event-sourced conversation ledger for the WhatsApp Business Platform"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Fold normalized events (JSON lines) into ledger entries.
    Fold(fold::FoldArgs),
    /// What a contact may be sent at an instant, and what each kind of send would cost.
    Eligibility(eligibility::EligibilityArgs),
    /// Normalize provider webhook bodies into normalized events (JSON lines).
    Normalize(normalize::NormalizeArgs),
    /// Run the ledger: webhook API, embedded log, projector and queries in one process.
    Serve(config::ServeArgs),
    /// Kafka mode: a stateless ingest worker taking webhooks into the Kafka events topic.
    Ingest(kafka_mode::IngestArgs),
    /// Kafka mode: a projector consumer-group member with the query API for its partitions.
    Project(kafka_mode::ProjectArgs),
    /// Append webhook bodies, send records or normalized events to a data directory's log
    /// (or post them to a server) and project them.
    Import(store_ops::ImportArgs),
    /// Ask eligibility, timeline, usage, invoice, attribution, entries or explain questions.
    Query(query::QueryArgs),
    /// Rebuild the state from the log into a fresh store.
    Replay(store_ops::ReplayArgs),
    /// Compare our classification with the provider's, per message and against saved
    /// analytics; exit 1 when differences exceed the tolerance.
    Reconcile(reconcile::ReconcileArgs),
    /// Compare the incremental state with one rebuilt from the log; exit 1 on mismatch.
    Audit(store_ops::AuditArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::Eligibility(args) => eligibility::run(&args),
        Command::Fold(args) => fold::run(&args),
        Command::Normalize(args) => normalize::run(&args),
        Command::Serve(args) => store_ops::serve(&args),
        Command::Ingest(args) => kafka_mode::ingest(&args),
        Command::Project(args) => kafka_mode::project(&args),
        Command::Import(args) => store_ops::import(&args),
        Command::Query(args) => query::run(&args),
        Command::Replay(args) => store_ops::replay(&args),
        Command::Reconcile(args) => match reconcile::run(&args) {
            Ok(true) => Ok(()),
            Ok(false) => return ExitCode::from(1),
            Err(error) => Err(error),
        },
        Command::Audit(args) => match store_ops::audit(&args) {
            Ok(true) => Ok(()),
            Ok(false) => return ExitCode::from(1),
            Err(error) => Err(error),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
