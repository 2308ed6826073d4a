//! Every webhook fixture in `../shared/fixtures/webhooks/`, used unedited: each normalizes to
//! events whose key fields `tests/golden/ingest-fixtures.txt` pins, or is refused or skipped
//! with the reason printed there. No fixture may panic any adapter.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use ledger_core::{EventKind, Timestamp};
use ledger_ingest::{normalize, Limits, Normalized, Provider};

fn fixtures_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/webhooks")
}

fn golden_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/golden/ingest-fixtures.txt")
}

/// What each fixture is for: an adapter, or a documented reason it is not normalized.
enum Route {
    Adapter(Provider),
    Ignored(&'static str),
}

fn route(folder: &str, file: &str) -> Route {
    match folder {
        "meta-cloud" => Route::Adapter(Provider::MetaCloud),
        "sinch" => Route::Adapter(Provider::Sinch),
        "sunshine" => Route::Adapter(Provider::Sunshine),
        _ if file.starts_with("gupshup-") => Route::Adapter(Provider::Gupshup),
        _ if file.starts_with("edna-") => {
            Route::Ignored("edna is not a supported provider: its envelope and camelCase referral have no adapter")
        }
        _ if file.starts_with("livechat-integrations-") => Route::Ignored(
            "LiveChat integrations relay a Meta status inside `data` without the WABA or phone number id: no adapter",
        ),
        _ if file.starts_with("neuapix-") => Route::Ignored(
            "NeuAPIx sends On-Premises-style top-level statuses without the business number: no adapter",
        ),
        _ => Route::Ignored("no adapter for this provider"),
    }
}

fn fixture_files() -> Vec<(String, PathBuf)> {
    let mut files = Vec::new();
    let mut folders: Vec<_> = std::fs::read_dir(fixtures_root())
        .expect("fixtures folder (../shared beside the repository)")
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .collect();
    folders.sort_by_key(|e| e.file_name());
    for folder in folders {
        let mut entries: Vec<_> = std::fs::read_dir(folder.path())
            .expect("readable")
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .collect();
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            files.push((folder.file_name().to_string_lossy().into_owned(), entry.path()));
        }
    }
    files
}

fn describe(normalized: &Normalized, out: &mut String) {
    for event in &normalized.events {
        let contact = event.contact.as_ref().map(|c| c.to_string()).unwrap_or_else(|| "-".into());
        let _ = write!(
            out,
            "  event {} t={} waba={} contact={}",
            event.event_id, event.event_time.0, event.waba_id, contact
        );
        match &event.kind {
            EventKind::InboundMessage(m) => {
                let _ = write!(out, " inbound {}", m.message_id);
                if let Some(ep) = &m.entry_point {
                    let _ = write!(
                        out,
                        " entry_point(source_type={:?} source_id={:?} ctwa_clid={} headline={:?} body={:?} media={:?})",
                        ep.source_type.as_deref().unwrap_or(""),
                        ep.source_id.as_deref().unwrap_or(""),
                        if ep.ctwa_clid.is_some() { "yes" } else { "no" },
                        ep.headline.as_deref().unwrap_or(""),
                        ep.body.as_deref().unwrap_or(""),
                        ep.media_type.as_deref().unwrap_or(""),
                    );
                }
            }
            EventKind::MessageStatus(s) => {
                let _ = write!(out, " status {:?} of {}", s.status, s.message_id);
                if let Some(recipient) = &s.recipient {
                    let _ = write!(out, " recipient={recipient}");
                }
                if let Some(participant) = &s.participant {
                    let _ = write!(out, " participant={participant}");
                }
                for error in &s.errors {
                    let _ = write!(out, " error={}", error.code);
                }
                if let Some(r) = &s.reported {
                    let _ = write!(
                        out,
                        " reported(model={:?} category={:?} type={:?} billable={:?} conversation={:?} origin={:?} expires={:?})",
                        r.pricing_model,
                        r.category.as_ref().map(|c| c.as_str()),
                        r.pricing_type.map(|t| t.as_str()),
                        r.billable,
                        r.conversation_id,
                        r.conversation_origin.as_ref().map(|c| c.as_str()),
                        r.conversation_expires_at.map(|t| t.0)
                    );
                }
            }
            EventKind::TemplateCategoryChange(c) => {
                let _ = write!(
                    out,
                    " category_change {} {} -> {} at {}",
                    c.name, c.language, c.category, c.effective_at.0
                );
            }
            EventKind::PricingReport(p) => {
                let r = &p.reported;
                let _ = write!(
                    out,
                    " pricing_report of {} (model={:?} category={:?} type={:?} billable={:?} conversation={:?})",
                    p.message_id,
                    r.pricing_model,
                    r.category.as_ref().map(|c| c.as_str()),
                    r.pricing_type.map(|t| t.as_str()),
                    r.billable,
                    r.conversation_id
                );
            }
            EventKind::VolumeTierUpdate(t) => {
                let _ = write!(
                    out,
                    " volume_tier {} {} tier={} month={} at={}",
                    t.pricing_category, t.region, t.tier, t.effective_month, t.tier_update_time.0
                );
            }
            EventKind::SendRecord(_) | EventKind::AccountSettings(_) => {
                let _ = write!(out, " {}", event.kind.name());
            }
        }
        out.push('\n');
    }
    for skipped in &normalized.skipped {
        let _ = writeln!(out, "  skipped {}: {}", skipped.path, skipped.reason);
    }
}

#[test]
fn every_fixture_normalizes_as_the_golden_file_says() {
    let received = Timestamp(1_800_000_000);
    let mut report = String::new();
    for (folder, path) in fixture_files() {
        let body = std::fs::read(&path).expect("readable fixture");
        let name = path.file_name().expect("file").to_string_lossy();
        let _ = writeln!(report, "{folder}/{name}");
        match route(&folder, &name) {
            Route::Ignored(reason) => {
                let _ = writeln!(report, "  ignored: {reason}");
            }
            Route::Adapter(provider) => match normalize(provider, &body, received, &Limits::default()) {
                Ok(normalized) => {
                    for event in &normalized.events {
                        event.validate().unwrap_or_else(|e| panic!("{folder}/{name}: invalid event: {e}"));
                        assert_eq!(event.receive_time, received);
                        assert_eq!(event.provider, provider.as_str(), "{folder}/{name}: provider label");
                    }
                    describe(&normalized, &mut report);
                }
                Err(error) => {
                    let _ = writeln!(report, "  refused: {error}");
                }
            },
        }
    }
    let golden = golden_path();
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &report).expect("write golden");
        return;
    }
    let expected = std::fs::read_to_string(&golden).unwrap_or_default();
    assert!(
        expected == report,
        "normalization differs from {} (UPDATE_GOLDEN=1 to accept):\n{report}",
        golden.display()
    );
}

#[test]
fn renormalizing_a_fixture_gives_the_same_event_ids() {
    for (folder, path) in fixture_files() {
        let name = path.file_name().expect("file").to_string_lossy().into_owned();
        let Route::Adapter(provider) = route(&folder, &name) else { continue };
        let body = std::fs::read(&path).expect("readable");
        let first = normalize(provider, &body, Timestamp(1), &Limits::default());
        let again = normalize(provider, &body, Timestamp(2), &Limits::default());
        if let (Ok(first), Ok(again)) = (first, again) {
            let ids = |n: &Normalized| n.events.iter().map(|e| e.event_id.clone()).collect::<Vec<_>>();
            assert_eq!(ids(&first), ids(&again), "{}", path.display());
        }
    }
}

#[test]
fn no_fixture_panics_any_adapter() {
    for (_, path) in fixture_files() {
        let body = std::fs::read(Path::new(&path)).expect("readable");
        for provider in Provider::ALL {
            let _ = normalize(*provider, &body, Timestamp(0), &Limits::default());
        }
    }
}
