//! The `ledger` command as a user runs it.

use std::path::PathBuf;

use assert_cmd::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn ledger() -> Command {
    Command::cargo_bin("ledger").expect("binary built")
}

/// Compares with a golden file; `UPDATE_GOLDEN=1` rewrites it instead.
fn assert_golden(name: &str, actual: &str) {
    let path = root().join("tests/golden").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).expect("write golden");
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| panic!("missing {}", path.display()));
    assert!(expected == actual, "output differs from {} (UPDATE_GOLDEN=1 to accept)", path.display());
}

#[test]
fn fold_of_the_bundled_sample_matches_the_golden_entries() {
    let output = ledger()
        .arg("fold")
        .arg(root().join("examples/sample-events.jsonl"))
        .arg("--explain")
        .output()
        .expect("runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_golden("sample-fold.jsonl", &String::from_utf8(output.stdout).expect("utf-8"));
}

#[test]
fn summary_counts_units_per_era_and_category() {
    let output = ledger()
        .arg("fold")
        .arg(root().join("examples/sample-events.jsonl"))
        .arg("--summary")
        .output()
        .expect("runs");
    assert!(output.status.success());
    assert_golden("sample-summary.txt", &String::from_utf8(output.stderr).expect("utf-8"));
}

#[test]
fn journal_shows_the_correction_of_out_of_order_statuses() {
    let output = ledger()
        .arg("fold")
        .arg(root().join("examples/sample-events.jsonl"))
        .arg("--journal")
        .output()
        .expect("runs");
    let journal = String::from_utf8(output.stdout).expect("utf-8");
    // wamid.B1: read (t+60) arrives first and is posted; the earlier delivered (t+20) reverses it.
    let b1: Vec<&str> = journal.lines().filter(|l| l.contains("\"message_id\":\"wamid.B1\"")).collect();
    assert_eq!(b1.len(), 3, "post, reversal, post");
    assert!(b1[1].contains("\"action\":\"reverse\""));
}

#[test]
fn bad_lines_are_reported_with_their_numbers_and_nothing_is_printed() {
    let input = concat!(
        r#"{"event_id":"a","event_time":1700000000,"receive_time":1700000000,"provider":"p","waba_id":"w","kind":{"type":"account_settings","time_zone":"UTC"}}"#,
        "\n",
        "not json\n",
        r#"{"event_id":"b","event_time":1700000000,"receive_time":1700000000,"provider":"p","waba_id":"w","kind":{"type":"account_settings","time_zone":"Nowhere/City"}}"#,
        "\n",
    );
    let assert = ledger().args(["fold", "-"]).write_stdin(input).assert().code(2).stdout("");
    let stderr = String::from_utf8(assert.get_output().stderr.clone()).expect("utf-8");
    assert!(stderr.contains("line 2: expected ident"), "{stderr}");
    assert!(stderr.contains("line 3: time_zone \"Nowhere/City\" is not an IANA time zone name"), "{stderr}");
    assert!(stderr.contains("error: 2 of 3 lines in - are not valid events"), "{stderr}");
}

#[test]
fn a_missing_file_is_a_clear_error() {
    let assert = ledger().args(["fold", "/nonexistent/events.jsonl"]).assert().code(2);
    let stderr = String::from_utf8(assert.get_output().stderr.clone()).expect("utf-8");
    assert!(stderr.starts_with("error: cannot open /nonexistent/events.jsonl"), "{stderr}");
}

fn fixture(path: &str) -> PathBuf {
    root().join("../shared/fixtures/webhooks").join(path)
}

#[test]
fn normalized_webhooks_fold_end_to_end() {
    // A Click-to-WhatsApp user message and a failed (never charged) status, both Meta doc examples.
    let normalized = ledger()
        .args(["normalize", "--provider", "meta_cloud", "--received-at", "1750300000"])
        .arg(fixture("meta-cloud/meta-doc-text-ctwa-referral.json"))
        .arg(fixture("meta-cloud/meta-doc-status-failed-131049.json"))
        .output()
        .expect("runs");
    assert!(normalized.status.success(), "{}", String::from_utf8_lossy(&normalized.stderr));
    let events = String::from_utf8(normalized.stdout).expect("utf-8");
    assert_eq!(events.lines().count(), 2);
    assert!(events.contains("\"entry_point\":{\"source_id\":\"120226305854810726\""), "{events}");
    // The normalized events are the fold's input format.
    ledger().args(["fold", "-"]).write_stdin(events).assert().success();
}

#[test]
fn a_refused_body_names_the_file_and_the_json_path() {
    let assert = ledger()
        .args(["normalize", "--provider", "meta_cloud"])
        .arg(fixture("meta-cloud/meta-doc-fragment-pricing-free-customer-service-service.json"))
        .assert()
        .code(2);
    let stderr = String::from_utf8(assert.get_output().stderr.clone()).expect("utf-8");
    assert!(
        stderr.contains("meta-doc-fragment-pricing-free-customer-service-service.json refused"),
        "{stderr}"
    );
    assert!(stderr.contains("missing field `object`"), "{stderr}");
    ledger().args(["normalize", "--provider", "carrier-pigeon", "x.json"]).assert().code(2);
}

#[test]
fn eligibility_answers_match_the_golden_file() {
    // Contact A inside its entry point window with the service window closed; contact B inside
    // its service window (free-form and in-window utility free, marketing and authentication
    // charged). Then era 5, on 2026-12-01 (R80, R81): contact A two hours after writing (a
    // free-form reply is a service message, free within its number's allowance, 1 of 1,000
    // used; utility charged, with Brazil's rate), and a second number whose 1,000 free service
    // messages of December are used (the next reply is charged).
    let mut answers = String::new();
    for (file, contact, at) in [
        ("sample-events.jsonl", "106540352242922/5511987650001", "2025-09-03T20:00:00Z"),
        ("sample-events.jsonl", "106540352242922/5511987650002", "2025-09-03T11:30:00Z"),
        ("sample-events.jsonl", "106540352242922/5511987650001", "2026-12-01T12:00:00Z"),
        ("service-allowance-2026-12.jsonl", "106540352242923/5511987600090", "2026-12-02T18:30:00Z"),
    ] {
        let output = ledger()
            .arg("eligibility")
            .arg(root().join("examples").join(file))
            .args(["--contact", contact, "--at", at])
            .output()
            .expect("runs");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        answers.push_str(&String::from_utf8(output.stdout).expect("utf-8"));
    }
    assert_golden("sample-eligibility.json", &answers);
}

#[test]
fn eligibility_refuses_an_unknown_contact_and_a_bad_instant() {
    let sample = root().join("examples/sample-events.jsonl");
    let assert = ledger()
        .arg("eligibility")
        .arg(&sample)
        .args(["--contact", "pn/nobody", "--at", "0"])
        .assert()
        .code(2);
    let stderr = String::from_utf8(assert.get_output().stderr.clone()).expect("utf-8");
    assert!(stderr.contains("names the contact pn/nobody"), "{stderr}");
    let assert = ledger()
        .arg("eligibility")
        .arg(&sample)
        .args(["--contact", "106540352242922/5511987650001", "--at", "tomorrow"])
        .assert()
        .code(2);
    let stderr = String::from_utf8(assert.get_output().stderr.clone()).expect("utf-8");
    assert!(stderr.contains("neither Unix seconds nor an RFC 3339 time"), "{stderr}");
}

/// ARCHITECTURE decision 2: a data directory keeps the rule settings it was folded under; a
/// command asking for others refuses, naming both, and `--refold` moves the state to them.
#[test]
fn a_data_directory_refuses_other_rule_settings_until_refolded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let sample = root().join("examples/sample-events.jsonl");
    let import = |extra: &[&str]| {
        ledger().arg("import").arg(&sample).arg("--data-dir").arg(&data).args(extra).output().expect("runs")
    };
    let first = import(&[]);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let usage = |extra: &[&str]| {
        ledger()
            .args(["query", "usage", "102290129340398", "--month", "2026-12", "--json", "--data-dir"])
            .arg(&data)
            .args(extra)
            .output()
            .expect("runs")
    };
    assert!(usage(&[]).status.success(), "the stored settings answer");
    assert!(usage(&["--service-allowance-scope", "phone_number"]).status.success(), "equal settings");
    let refused = usage(&["--service-allowance-scope", "waba"]);
    assert_eq!(refused.status.code(), Some(2));
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(
        message.contains("service_allowance_scope = \"phone_number\"")
            && message.contains("service_allowance_scope = \"waba\"")
            && message.contains("--refold"),
        "{message}"
    );
    // Importing under other settings refuses too, before anything is appended or folded.
    let refused = import(&["--fep-window-hours-from-2026-09-28", "168"]);
    assert_eq!(refused.status.code(), Some(2), "{}", String::from_utf8_lossy(&refused.stderr));
    // --refold rebuilds the state from the log under the new settings, which it then keeps.
    let refolded = import(&["--fep-window-hours-from-2026-09-28", "168", "--refold"]);
    assert!(refolded.status.success(), "{}", String::from_utf8_lossy(&refolded.stderr));
    assert!(usage(&["--fep-window-hours-from-2026-09-28", "168"]).status.success());
    assert_eq!(usage(&[]).status.code(), Some(0), "no flags: the state's own (new) settings");
    assert_eq!(usage(&["--fep-window-hours-from-2026-09-28", "72"]).status.code(), Some(2));
    let kept = std::fs::read_dir(&data)
        .expect("data dir")
        .filter_map(Result::ok)
        .any(|e| e.file_name().to_string_lossy().starts_with("state.before-refold-"));
    assert!(kept, "the previous state is kept beside the new one");
}

/// ARCHITECTURE decision 5: a log older than the state (restored from an older backup) is
/// refused at start with the offsets, not silently projected from the wrong place.
#[test]
fn a_log_older_than_the_state_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let sample = root().join("examples/sample-events.jsonl");
    let imported = ledger().arg("import").arg(&sample).arg("--data-dir").arg(&data).output().expect("runs");
    assert!(imported.status.success(), "{}", String::from_utf8_lossy(&imported.stderr));
    std::fs::remove_dir_all(data.join("log")).expect("drop the log");
    let empty = dir.path().join("empty.jsonl");
    std::fs::write(&empty, "").expect("write");
    let output = ledger().arg("import").arg(&empty).arg("--data-dir").arg(&data).output().expect("runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("the log ends at 0") && stderr.contains("older than the state"), "{stderr}");
    // `ledger serve` on it does not keep answering with no projector: it exits, non-zero, so a
    // supervisor restarts it once the log is restored.
    let served = ledger()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .expect("runs");
    assert_eq!(served.status.code(), Some(70), "{}", String::from_utf8_lossy(&served.stderr));
    assert!(String::from_utf8_lossy(&served.stderr).contains("older than the state"));
}

/// ARCHITECTURE "State: where it lives": an account event (here a template category change,
/// R90) re-folds the account's contacts, and every view of them follows — the timeline
/// too, not just the journal. Tried as a user would: a utility conversation imported, then, in
/// a second import, the template's recategorization effective before the send.
#[test]
fn a_template_category_change_moves_the_timelines_it_refolds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let contact = r#""waba_id":"W1","contact":{"phone_number_id":"P1","user_id":"5511900000001"}"#;
    let sends = [
        r#"{"event_id":"settings:W1","schema_version":1,"event_time":1704067200,"receive_time":1704067200,"provider":"meta_cloud","waba_id":"W1","kind":{"type":"account_settings","time_zone":"UTC","currency":"USD"}}"#.to_owned(),
        format!(r#"{{"event_id":"send:wamid.U1","schema_version":1,"event_time":1710244800,"receive_time":1710244801,"provider":"meta_cloud",{contact},"kind":{{"type":"send_record","message_id":"wamid.U1","recipient":"5511900000001","content":{{"template":{{"name":"order_update","language":"pt_BR","category":"utility"}}}}}}}}"#),
        format!(r#"{{"event_id":"meta:wamid.U1:delivered","schema_version":1,"event_time":1710244805,"receive_time":1710244806,"provider":"meta_cloud",{contact},"kind":{{"type":"message_status","message_id":"wamid.U1","status":"delivered","recipient":"5511900000001"}}}}"#),
    ];
    let change = r#"{"event_id":"meta:tcu:order_update:1709251200","schema_version":1,"event_time":1709251200,"receive_time":1710300000,"provider":"meta_cloud","waba_id":"W1","kind":{"type":"template_category_change","name":"order_update","language":"pt_BR","category":"marketing","effective_at":1709251200}}"#;
    let import = |name: &str, lines: &str| {
        let file = dir.path().join(name);
        std::fs::write(&file, lines).expect("write");
        let output = ledger().arg("import").arg(&file).arg("--data-dir").arg(&data).output().expect("runs");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    };
    let open_conversations = || {
        let output = ledger()
            .args(["query", "timeline", "P1", "5511900000001", "--waba-id", "W1", "--json", "--data-dir"])
            .arg(&data)
            .output()
            .expect("runs");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let view: serde_json::Value = serde_json::from_slice(&output.stdout).expect("json");
        view["snapshot"]["state"]["open_conversations"]
            .as_array()
            .expect("open conversations")
            .iter()
            .map(|c| c["category"].as_str().expect("category").to_owned())
            .collect::<Vec<_>>()
    };
    import("sends.jsonl", &(sends.join("\n") + "\n"));
    assert_eq!(open_conversations(), ["utility"]);

    import("change.jsonl", &format!("{change}\n"));
    // R8, R90: the template counts as marketing from the change's effective instant on.
    assert_eq!(open_conversations(), ["marketing"], "the timeline follows the re-fold");
    let audit = ledger().arg("audit").arg("--quiet").arg("--data-dir").arg(&data).output().expect("runs");
    let report = String::from_utf8_lossy(&audit.stdout);
    assert!(audit.status.success() && report.contains("audit: match"), "{report}");
}

/// `ledger import` appends its inputs in groups (one log sync per group), yet answers each input
/// line for itself: a conflict and a malformed line in a later group are named by their line,
/// a repeat is counted as already in the log, and everything else is imported and projected.
#[test]
fn a_grouped_import_answers_every_line_by_its_number() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let inbound = |n: usize, message: &str| {
        format!(
            r#"{{"event_id":"meta:wamid.G{n}","schema_version":1,"event_time":{},"receive_time":1760000000,"provider":"meta_cloud","waba_id":"W1","contact":{{"phone_number_id":"P1","user_id":"55119{n:08}"}},"kind":{{"type":"inbound_message","message_id":"{message}"}}}}"#,
            1_759_000_000 + n
        )
    };
    // 20,000 lines: well past one group of 8,192 records.
    let mut lines: Vec<String> = (0..20_000).map(|n| inbound(n, &format!("wamid.G{n}"))).collect();
    lines[12_000 - 1] = inbound(5, "wamid.other"); // line 12000: event G5 again, other content
    lines[15_000 - 1] = inbound(7, "wamid.G7"); // line 15000: an exact repeat of line 8
    lines[17_000 - 1] = "{\"event_id\":".to_owned(); // line 17000: not JSON
    let file = dir.path().join("many.jsonl");
    std::fs::write(&file, lines.join("\n") + "\n").expect("write");

    let output = ledger().arg("import").arg(&file).arg("--data-dir").arg(&data).output().expect("runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(!output.status.success(), "refused inputs fail the import");
    assert!(
        stdout.contains("imported: 19997 new events, 1 already in the log, 2 refused")
            && stdout.contains("projected 19997 records"),
        "{stdout}"
    );
    let name = file.display().to_string();
    assert!(stderr.contains(&format!("{name}:12000: refused (409): event meta:wamid.G5")), "{stderr}");
    assert!(stderr.contains(&format!("{name}:17000: refused (400)")), "{stderr}");
    assert_eq!(stderr.matches("refused (").count(), 2, "{stderr}");
}
