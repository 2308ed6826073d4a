//! Arbitrary and mutated input never panics an adapter: it always yields events or a typed
//! error.

use ledger_core::Timestamp;
use ledger_ingest::{normalize, IngestError, Limits, Provider};
use proptest::prelude::*;

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        "[a-z_0-9.]{0,12}".prop_map(serde_json::Value::from),
        prop::sample::select(vec![
            "sent",
            "delivered",
            "read",
            "failed",
            "messages",
            "whatsapp_business_account"
        ])
        .prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "object",
                    "entry",
                    "id",
                    "changes",
                    "field",
                    "value",
                    "metadata",
                    "phone_number_id",
                    "messages",
                    "statuses",
                    "from",
                    "timestamp",
                    "status",
                    "recipient_id",
                    "pricing",
                    "conversation",
                    "referral",
                    "errors",
                    "code",
                    "type",
                    "category",
                ])
                .prop_map(str::to_owned),
                inner,
                0..6
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Every fixture of every provider folder.
fn fixture_bodies() -> Vec<Vec<u8>> {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/webhooks");
    let mut bodies = Vec::new();
    for folder in
        std::fs::read_dir(root).expect("fixtures").filter_map(Result::ok).filter(|e| e.path().is_dir())
    {
        for file in std::fs::read_dir(folder.path()).expect("readable").filter_map(Result::ok) {
            if file.path().extension().is_some_and(|x| x == "json") {
                bodies.push(std::fs::read(file.path()).expect("readable"));
            }
        }
    }
    bodies.sort();
    bodies
}

fn every_adapter(body: &[u8]) {
    for provider in Provider::ALL {
        outcome_is_typed(normalize(*provider, body, Timestamp(0), &Limits::default()));
    }
}

fn outcome_is_typed(result: Result<ledger_ingest::Normalized, IngestError>) {
    if let Ok(normalized) = result {
        for event in normalized.events {
            match event.validate() {
                Ok(()) => {}
                // A well-formed time outside 2010–2100 is the intake's to refuse (422, kept as
                // a dead letter): adapters pass the provider's instant through unchanged.
                Err(ledger_core::EventError::EventTimeOutOfRange { .. }) => {}
                Err(error) => panic!("adapter produced an invalid event ({error}): {event:?}"),
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_json_never_panics(value in json_value()) {
        let body = serde_json::to_vec(&value).expect("serializes");
        every_adapter(&body);
    }

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        every_adapter(&body);
    }

    #[test]
    fn mutated_fixtures_never_panic(
        pick in any::<prop::sample::Index>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
    ) {
        let bodies = fixture_bodies();
        let mut body = bodies[pick.index(bodies.len())].clone();
        for (at, byte, op) in edits {
            if body.is_empty() { break; }
            let i = at.index(body.len());
            match op {
                0 => body[i] = byte,
                1 => { body.remove(i); }
                _ => body.truncate(i),
            }
        }
        every_adapter(&body);
    }
}

#[test]
fn malformed_input_names_the_json_path() {
    let body = br#"{"object":"whatsapp_business_account","entry":[{"id":"W","changes":[{"field":"messages","value":
        {"metadata":{"phone_number_id":"P"},"statuses":[{"id":"wamid.1","status":"sent","timestamp":"soon","recipient_id":"1"}]}}]}]}"#;
    let error =
        normalize(Provider::MetaCloud, body, Timestamp(0), &Limits::default()).expect_err("bad timestamp");
    let IngestError::Malformed { path, reason } = error else { panic!("malformed expected") };
    assert_eq!(path, "entry[0].changes[0].value.statuses[0].timestamp");
    assert!(reason.contains("\"soon\" is not Unix seconds"), "{reason}");
}

#[test]
fn syntax_errors_and_limits_are_typed() {
    let error =
        normalize(Provider::MetaCloud, b"{\"object\":", Timestamp(0), &Limits::default()).expect_err("eof");
    assert!(matches!(error, IngestError::Malformed { .. }), "{error}");
    let deep = format!("{}{}", "[".repeat(40), "]".repeat(40));
    assert_eq!(
        normalize(Provider::MetaCloud, deep.as_bytes(), Timestamp(0), &Limits::default()),
        Err(IngestError::TooDeep { limit: 32 })
    );
    assert_eq!("sinchh".parse::<Provider>(), Err(IngestError::UnknownProvider("sinchh".into())));
}

#[test]
fn template_category_updates_become_dated_category_changes() {
    // Shapes per Meta's template_category_update reference: an announced change and a completed one.
    let announced = br#"{"object":"whatsapp_business_account","entry":[{"id":"W","time":1760000000,"changes":[{"field":"template_category_update","value":
        {"message_template_id":12345,"message_template_name":"order_update","message_template_language":"en_US",
         "correct_category":"MARKETING","new_category":"UTILITY","category_update_timestamp":1760086400}}]}]}"#;
    let completed = br#"{"object":"whatsapp_business_account","entry":[{"id":"W","time":1760086400,"changes":[{"field":"template_category_update","value":
        {"message_template_id":12345,"message_template_name":"order_update","message_template_language":"en_US",
         "previous_category":"UTILITY","new_category":"MARKETING"}}]}]}"#;
    for body in [&announced[..], &completed[..]] {
        let normalized =
            normalize(Provider::MetaCloud, body, Timestamp(0), &Limits::default()).expect("normalizes");
        assert_eq!(normalized.events.len(), 1);
        let event = &normalized.events[0];
        assert_eq!(event.event_id.as_str(), "meta:tcu:12345:1760086400:marketing");
        let ledger_core::EventKind::TemplateCategoryChange(change) = &event.kind else {
            panic!("category change")
        };
        assert_eq!(
            (change.category, change.effective_at.0),
            (ledger_core::TemplateCategory::Marketing, 1_760_086_400)
        );
        assert!(event.contact.is_none());
    }
}
