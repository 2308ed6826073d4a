//! `ledger fold FILE`: normalized events in, entries out.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use ledger_core::{explain, Entry, Event, Explanation, Fact, Ingested, Ledger, LedgerConfig};

use crate::config::RulesArgs;
use serde::Serialize;

/// At most this many bad lines are listed before giving up the listing.
const BAD_LINES_SHOWN_MAX: usize = 20;

#[derive(Debug, Args)]
pub struct FoldArgs {
    /// Normalized events, one JSON object per line (see README); `-` reads standard input.
    pub file: PathBuf,
    /// Add each entry's rule path and the events behind it.
    #[arg(long)]
    pub explain: bool,
    /// Print every journal line in order (postings and reversals) instead of the entries left
    /// after netting reversals.
    #[arg(long)]
    pub journal: bool,
    /// After the entries, print a per-category summary to standard error.
    #[arg(long)]
    pub summary: bool,
    #[command(flatten)]
    pub rules: RulesArgs,
}

#[derive(Serialize)]
struct ExplainedEntry<'a> {
    #[serde(flatten)]
    entry: &'a Entry,
    explain: Explanation,
}

pub fn run(args: &FoldArgs) -> Result<()> {
    let events = read_events(&args.file)?;
    let mut ledger = Ledger::new(LedgerConfig { rules: args.rules.settings()?, allowance_limit: None });
    let journal = fold_events(&mut ledger, events)?;
    let entries = if args.journal { journal } else { ledger.live_entries() };

    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    for entry in &entries {
        if args.explain {
            serde_json::to_writer(&mut out, &ExplainedEntry { entry, explain: explain(entry) })?;
        } else {
            serde_json::to_writer(&mut out, entry)?;
        }
        out.write_all(b"\n")?;
    }
    out.flush()?;
    if args.summary {
        print_summary(&ledger.live_entries());
    }
    Ok(())
}

/// Folds events in file order, warning about ids seen before with different content.
pub(crate) fn fold_events(ledger: &mut Ledger, events: Vec<(usize, Event)>) -> Result<Vec<Entry>> {
    let mut journal = Vec::new();
    for (line, event) in events {
        let id = event.event_id.clone();
        match ledger.apply(event, &mut journal).with_context(|| format!("line {line}"))? {
            Ingested::Created | Ingested::Exists => {}
            Ingested::ExistsWithDifferent(field) => {
                eprintln!("warning: line {line}: event {id} was seen before with a different {field}; the first is kept");
            }
        }
    }
    Ok(journal)
}

/// Parses every line before folding any, so a bad file produces no entries at all.
pub(crate) fn read_events(path: &PathBuf) -> Result<Vec<(usize, Event)>> {
    let reader: Box<dyn BufRead> = if path.as_os_str() == "-" {
        Box::new(BufReader::new(io::stdin()))
    } else {
        let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        Box::new(BufReader::new(file))
    };
    let mut events = Vec::new();
    let mut bad = Vec::new();
    for (index, line) in reader.lines().enumerate() {
        let number = index + 1;
        let line = line.with_context(|| format!("cannot read line {number} of {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let parsed = serde_json::from_str::<Event>(&line)
            .map_err(|e| e.to_string())
            .and_then(|event| event.validate().map(|()| event).map_err(|e| e.to_string()));
        match parsed {
            Ok(event) => events.push((number, event)),
            Err(reason) => bad.push(format!("line {number}: {reason}")),
        }
    }
    if !bad.is_empty() {
        for message in bad.iter().take(BAD_LINES_SHOWN_MAX) {
            eprintln!("{message}");
        }
        if bad.len() > BAD_LINES_SHOWN_MAX {
            eprintln!("… and {} more", bad.len() - BAD_LINES_SHOWN_MAX);
        }
        bail!(
            "{} of {} lines in {} are not valid events",
            bad.len(),
            bad.len() + events.len(),
            path.display()
        );
    }
    Ok(events)
}

#[derive(Default)]
struct Counts {
    conversations: usize,
    conversations_billable: usize,
    messages: usize,
    messages_billable: usize,
}

/// Conversations and delivered messages per (era, category), netted.
fn print_summary(entries: &[Entry]) {
    let mut rows: BTreeMap<(u8, &str), Counts> = BTreeMap::new();
    for entry in entries {
        match &*entry.fact {
            Fact::ConversationOpened(c) => {
                let row = rows.entry((c.era.number(), c.category.as_str())).or_default();
                row.conversations += 1;
                row.conversations_billable += usize::from(entry.billable);
            }
            Fact::MessageBilled(m) => {
                let row = rows.entry((m.era.number(), m.category.as_str())).or_default();
                row.messages += 1;
                row.messages_billable += usize::from(entry.billable);
            }
        }
    }
    let stderr = io::stderr();
    let mut err = stderr.lock();
    let _ = writeln!(
        err,
        "\n{:<4} {:<22} {:>13} {:>9} {:>9} {:>9}",
        "era", "category", "conversations", "billable", "messages", "billable"
    );
    for ((era, category), c) in &rows {
        let _ = writeln!(
            err,
            "{:<4} {:<22} {:>13} {:>9} {:>9} {:>9}",
            era, category, c.conversations, c.conversations_billable, c.messages, c.messages_billable
        );
    }
    let billable = entries.iter().filter(|e| e.billable).count();
    let _ = writeln!(err, "billable units: {billable} (conversations in eras 1-3, messages from era 4)");
}
