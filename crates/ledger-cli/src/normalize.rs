//! `ledger normalize --provider P FILE…`: provider webhook bodies in, normalized events out.

use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
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
    let mut refused = 0usize;
    for path in &args.files {
        let body = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        // A refused body is reported and the others still converted: one bad file in a batch
        // must not hide the rest. The exit status still says something was refused.
        let normalized = match normalize(provider, &body, received_at, &Limits::default()) {
            Ok(normalized) => normalized,
            Err(error) => {
                eprintln!("{} refused: {error}", path.display());
                refused += 1;
                continue;
            }
        };
        for skipped in &normalized.skipped {
            eprintln!("{}: skipped {}: {}", path.display(), skipped.path, skipped.reason);
        }
        for event in &normalized.events {
            serde_json::to_writer(&mut out, event)?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()?;
    if refused > 0 {
        bail!("{refused} of {} bodies refused", args.files.len());
    }
    Ok(())
}
