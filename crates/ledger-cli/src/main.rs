//! `ledger`: the command-line entry point. Thin by design: argument parsing here, the work in
//! the library crates and one module per subcommand.

mod fold;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Fold(args) => fold::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
