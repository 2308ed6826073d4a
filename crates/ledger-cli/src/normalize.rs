//! `ledger normalize --provider P FILE…`: provider webhook bodies in, normalized events out.

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use clap::Args;
use ledger_core::Timestamp;
use ledger_ingest::{normalize, Limits, Provider};

#[derive(Debug, Args)]
pub struct NormalizeArgs {
    /// The body format: meta_cloud, sinch, sunshine, gupshup or send_records.
    #[arg(long)]
    pub provider: String,
    /// The receive time to stamp (Unix seconds); defaults to now. Event ids do not depend on it.
    #[arg(long)]
    pub received_at: Option<i64>,
    /// Webhook bodies, one per file.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
}

pub fn run(args: &NormalizeArgs) -> Result<()> {
    let provider: Provider = args.provider.parse()?;
    let received_at = Timestamp(match args.received_at {
        Some(seconds) => seconds,
        None => SystemTime::now().duration_since(UNIX_EPOCH).context("clock before 1970")?.as_secs() as i64,
    });
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    for path in &args.files {
        let body = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let normalized = normalize(provider, &body, received_at, &Limits::default())
            .with_context(|| format!("{} refused", path.display()))?;
        for skipped in &normalized.skipped {
            eprintln!("{}: skipped {}: {}", path.display(), skipped.path, skipped.reason);
        }
        for event in &normalized.events {
            serde_json::to_writer(&mut out, event)?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    Ok(())
}
