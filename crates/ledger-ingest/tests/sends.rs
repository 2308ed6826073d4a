//! Send records as `docs/send-records.md` documents them: the example there is parsed here, so
//! the documentation cannot drift from the code.

use ledger_core::{EventKind, SendContent, TemplateCategory, Timestamp};
use ledger_ingest::{normalize, IngestError, Limits, Provider};

fn documented_example() -> String {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/send-records.md"))
        .expect("doc");
    let start = doc.find("```json\n").expect("json block") + "```json\n".len();
    let end = start + doc[start..].find("```").expect("block end");
    doc[start..end].to_owned()
}

fn sends(body: &str) -> Result<ledger_ingest::Normalized, IngestError> {
    normalize(Provider::SendRecords, body.as_bytes(), Timestamp(7), &Limits::default())
}

#[test]
fn the_documented_example_normalizes_to_send_record_events() {
    let normalized = sends(&documented_example()).expect("the documented example is valid");
    assert_eq!(normalized.events.len(), 2);
    let first = &normalized.events[0];
    assert_eq!(
        first.event_id.as_str(),
        "send:wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA="
    );
    assert_eq!((first.event_time.0, first.receive_time.0), (1_750_030_073, 7));
    assert_eq!(first.contact.as_ref().map(|c| c.to_string()), Some("106540352242922/16505551234".to_owned()));
    let EventKind::SendRecord(record) = &first.kind else { panic!("send record") };
    assert_eq!(record.recipient.as_deref(), Some("16505551234"), "the leading + is dropped");
    let SendContent::Template(template) = &record.content else { panic!("template") };
    assert_eq!((&*template.name, template.category), ("autumn_sale", TemplateCategory::Marketing));
    let EventKind::SendRecord(free_form) = &normalized.events[1].kind else { panic!("send record") };
    assert_eq!(free_form.content, SendContent::NonTemplate { kind: "text".into() });
    assert!(normalized.events.iter().all(|e| e.validate().is_ok()));
}

#[test]
fn a_single_record_and_a_business_scoped_user() {
    let body = r#"{"message_id":"m1","waba_id":"w","phone_number_id":"p","recipient":"15550001",
        "user_id":"US.123","sent_at":1,"non_template":"image"}"#;
    let normalized = sends(body).expect("valid");
    assert_eq!(normalized.events[0].contact.as_ref().map(|c| c.to_string()), Some("p/US.123".to_owned()));
}

#[test]
fn mistakes_are_refused_with_their_path() {
    let cases = [
        (
            r#"[{"message_id":"m","waba_id":"w","phone_number_id":"p","recipient":"1","sent_at":1,"non_template":"text","colour":"red"}]"#,
            "[0]",
            "unknown field `colour`",
        ),
        (
            r#"{"message_id":"m","waba_id":"w","phone_number_id":"p","recipient":"1","sent_at":1,"non_template":"text","template":{"name":"t","language":"en","category":"utility"}}"#,
            "[0]",
            "exactly one of `template` and `non_template` is required",
        ),
        (
            r#"{"message_id":"m","waba_id":"w","phone_number_id":"p","recipient":"1","sent_at":1,"template":{"name":"t","language":"en","category":"promo"}}"#,
            "[0].template.category",
            "\"promo\" is not marketing, utility or authentication",
        ),
        (
            r#"{"message_id":"m","waba_id":"w","phone_number_id":"p","recipient":"1","sent_at":"yesterday","non_template":"text"}"#,
            "[0].sent_at",
            "\"yesterday\"",
        ),
        (
            r#"{"message_id":"","waba_id":"w","phone_number_id":"p","recipient":"1","sent_at":1,"non_template":"text"}"#,
            "[0].message_id",
            "must not be empty",
        ),
    ];
    for (body, expected_path, expected_reason) in cases {
        let Err(IngestError::Malformed { path, reason }) = sends(body) else { panic!("refused: {body}") };
        assert!(path.starts_with(expected_path), "{body}: path {path}");
        assert!(reason.contains(expected_reason), "{body}: reason {reason}");
    }
}
