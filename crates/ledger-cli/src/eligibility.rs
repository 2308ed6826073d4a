//! `ledger eligibility FILE --contact PHONE_NUMBER_ID/USER_ID --at TIME`: what the contact may be
//! sent at that instant (R1, R2, R25, R53), what each kind of send would open or be billed as,
//! and the list rate of each chargeable send on the card in force (R5, R6, R80).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use ledger_core::{ContactKey, Ledger, LedgerConfig, Timestamp, WabaId};

use crate::config::{PricingArgs, RulesArgs};
use crate::fold::{fold_events, read_events};

#[derive(Debug, Args)]
pub struct EligibilityArgs {
    /// Normalized events, one JSON object per line; `-` reads standard input.
    pub file: PathBuf,
    /// The pair: business phone number id and user id, as `PHONE_NUMBER_ID/USER_ID`.
    #[arg(long)]
    pub contact: String,
    /// The instant: Unix seconds or an RFC 3339 time. Events after it are not considered.
    #[arg(long)]
    pub at: String,
    /// The WABA; needed only when the contact appears under several.
    #[arg(long)]
    pub waba: Option<String>,
    #[command(flatten)]
    pub rules: RulesArgs,
    #[command(flatten)]
    pub pricing: PricingArgs,
}

pub fn run(args: &EligibilityArgs) -> Result<()> {
    let (phone, user) = args
        .contact
        .split_once('/')
        .filter(|(p, u)| !p.is_empty() && !u.is_empty())
        .with_context(|| format!("--contact {:?} is not PHONE_NUMBER_ID/USER_ID", args.contact))?;
    let contact = ContactKey::new(phone, user);
    let at = parse_instant(&args.at)?;
    let events = read_events(&args.file)?;
    let mut wabas: Vec<WabaId> = events
        .iter()
        .filter(|(_, e)| e.contact.as_ref() == Some(&contact))
        .map(|(_, e)| e.waba_id.clone())
        .collect();
    wabas.sort();
    wabas.dedup();
    let waba = match (&args.waba, wabas.as_slice()) {
        (Some(waba), _) => WabaId::from(waba.as_str()),
        (None, [only]) => only.clone(),
        (None, []) => bail!("no event in {} names the contact {}", args.file.display(), args.contact),
        (None, _) => bail!("the contact appears under several WABAs; choose one with --waba"),
    };
    let pricing = args.pricing.load()?;
    let mut ledger = Ledger::new(LedgerConfig { rules: args.rules.settings()?, allowance_limit: None });
    fold_events(&mut ledger, events)?;
    let answer = pricing.price_eligibility(waba.as_str(), user, ledger.eligibility(&waba, &contact, at));
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, &answer)?;
    out.write_all(b"\n")?;
    Ok(())
}

fn parse_instant(text: &str) -> Result<Timestamp> {
    if let Ok(seconds) = text.parse::<i64>() {
        return Ok(Timestamp(seconds));
    }
    let parsed = chrono::DateTime::parse_from_rfc3339(text)
        .with_context(|| format!("--at {text:?} is neither Unix seconds nor an RFC 3339 time"))?;
    Ok(Timestamp(parsed.timestamp()))
}
