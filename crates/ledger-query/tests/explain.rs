//! An entry's explanation as the API serves it (from the stored entry) is the core's own
//! explanation of that entry: the same words, rule path and events as `ledger fold --explain`.

use ledger_core::{explain, Entry, Event, Ledger, LedgerConfig};
use ledger_proto::v1;
use ledger_query::views::ExplanationView;
use prost::Message;

/// Every journal line of a bundled sample, folded under the default rules.
fn journal_of(sample: &str) -> Vec<Entry> {
    let path = format!("{}/../../examples/{sample}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("the bundled sample");
    let mut ledger = Ledger::new(LedgerConfig::default());
    let mut journal = Vec::new();
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        let event: Event = serde_json::from_str(line).expect("a normalized event");
        let _ = ledger.apply(event, &mut journal);
    }
    journal
}

fn assert_explained_alike(sample: &str) -> usize {
    let journal = journal_of(sample);
    assert!(!journal.is_empty(), "{sample} yields entries");
    for entry in &journal {
        // As stored: the protobuf bytes the store keeps, read back.
        let stored = v1::Entry::decode(v1::Entry::from(entry).encode_to_vec().as_slice()).expect("decodes");
        let view = ExplanationView::try_from(&stored).expect("a stored entry explains");
        let core = explain(entry);
        assert_eq!(view.summary, core.summary, "summary of {}", entry.id);
        let rules: Vec<&str> = view.rule_path.iter().map(|step| step.rule.as_str()).collect();
        let core_rules: Vec<&str> = core.rule_path.iter().map(|step| step.rule).collect();
        assert_eq!(rules, core_rules, "rule path of {}", entry.id);
        for (step, core_step) in view.rule_path.iter().zip(&core.rule_path) {
            assert_eq!(step.says, Some(core_step.says), "{} in {}", step.rule, entry.id);
        }
        let events: Vec<String> = core.events.iter().map(ToString::to_string).collect();
        assert_eq!(view.events, events, "events of {}", entry.id);
        assert_eq!(view.entry.id, entry.id.to_string(), "the view is of this entry");
    }
    journal.len()
}

#[test]
fn stored_entries_of_the_click_to_whatsapp_sample_explain_as_the_core_does() {
    assert_explained_alike("sample-events.jsonl");
}

#[test]
fn stored_entries_of_the_era5_allowance_sample_explain_as_the_core_does() {
    // Era 5's service allowance (R80): the allowance part of the summary is the core's too.
    let entries = assert_explained_alike("service-allowance-2026-12.jsonl");
    assert!(entries > 1);
}
