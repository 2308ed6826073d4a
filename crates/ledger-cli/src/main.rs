//! `ledger`: the command-line entry point. Thin by design: argument parsing here, the work in
//! the library crates and one module per subcommand.

mod eligibility;
mod fold;
mod normalize;

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Eligibility(args) => eligibility::run(&args),
        Command::Fold(args) => fold::run(&args),
        Command::Normalize(args) => normalize::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
