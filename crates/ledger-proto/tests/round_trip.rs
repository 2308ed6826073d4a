//! Core events survive core → protobuf bytes → core unchanged; malformed protobuf events are
//! refused with the field named; entries map field by field.

use ledger_core::{
    AccountSettings, BusinessAgentUse, ContactKey, DeliveryStatus, EntryPoint, Event, EventKind,
    InboundMessage, Ledger, LedgerConfig, LocalMonth, MessageStatus, PricingModel, PricingType,
    ReportedCategory, ReportedCost, ReportedPricing, SendContent, SendRecord, StatusError, TemplateCategory,
    TemplateCategoryChange, TemplateUse, Timestamp, VolumeTierUpdate,
};
use ledger_proto::{decode_event, encode_event, v1, ConvertError, DecodeError};
use proptest::prelude::*;
use prost::Message;

fn text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9._:+-]{1,24}"
}

fn opt_text() -> impl Strategy<Value = Option<String>> {
    prop::option::of(text())
}

fn template_category() -> impl Strategy<Value = TemplateCategory> {
    prop::sample::select(TemplateCategory::ALL.to_vec())
}

fn reported_category() -> impl Strategy<Value = ReportedCategory> {
    prop_oneof![
        prop::sample::select(vec![
            "marketing",
            "marketing_lite",
            "utility",
            "authentication",
            "authentication-international",
            "service",
            "referral_conversion",
            "customer_initiated",
            "business_initiated",
            "group_utility",
        ])
        .prop_map(ReportedCategory::parse),
        "x_[a-z]{1,10}".prop_map(|s| ReportedCategory::parse(&s)),
    ]
}

fn reported() -> impl Strategy<Value = ReportedPricing> {
    (
        prop::option::of(prop::sample::select(vec![PricingModel::Nbp, PricingModel::Cbp, PricingModel::Pmp])),
        prop::option::of(reported_category()),
        prop::option::of(prop::sample::select(vec![
            PricingType::Regular,
            PricingType::FreeCustomerService,
            PricingType::FreeEntryPoint,
            PricingType::FreeGroupCustomerService,
        ])),
        prop::option::of(any::<bool>()),
        opt_text(),
        prop::option::of(reported_category()),
        prop::option::of(any::<i64>().prop_map(Timestamp)),
        prop::option::of((text(), text()).prop_map(|(amount, currency)| ReportedCost { amount, currency })),
    )
        .prop_map(
            |(
                pricing_model,
                category,
                pricing_type,
                billable,
                conversation_id,
                conversation_origin,
                expires,
                cost,
            )| {
                ReportedPricing {
                    pricing_model,
                    category,
                    pricing_type,
                    billable,
                    conversation_id,
                    conversation_origin,
                    conversation_expires_at: expires,
                    cost,
                }
            },
        )
}

fn entry_point() -> impl Strategy<Value = EntryPoint> {
    ((opt_text(), opt_text(), opt_text(), opt_text()), (opt_text(), opt_text(), opt_text(), opt_text()))
        .prop_map(
            |((source_id, source_url, source_type, ctwa_clid), (headline, body, media_type, media_url))| {
                EntryPoint {
                    source_id,
                    source_url,
                    source_type,
                    ctwa_clid,
                    headline,
                    body,
                    media_type,
                    media_url,
                }
            },
        )
}

fn kind() -> impl Strategy<Value = EventKind> {
    prop_oneof![
        (text(), prop::option::of(entry_point())).prop_map(|(id, entry_point)| {
            EventKind::InboundMessage(InboundMessage { message_id: id.into(), entry_point })
        }),
        (
            (
                text(),
                opt_text(),
                prop::option::of((text(), text(), template_category())),
                text(),
                any::<bool>()
            ),
            prop::option::of(prop::option::of(any::<u64>()).prop_map(|tokens| BusinessAgentUse { tokens })),
        )
            .prop_map(|((id, recipient, template, kind, marketing_lite), meta_business_agent)| {
                EventKind::SendRecord(SendRecord {
                    message_id: id.into(),
                    recipient: recipient.map(Into::into),
                    content: match template {
                        Some((name, language, category)) => SendContent::Template(TemplateUse {
                            name: name.into(),
                            language: language.into(),
                            category,
                        }),
                        None => SendContent::NonTemplate { kind },
                    },
                    marketing_lite,
                    meta_business_agent,
                })
            }),
        (
            text(),
            prop::sample::select(vec![
                DeliveryStatus::Sent,
                DeliveryStatus::Delivered,
                DeliveryStatus::Read,
                DeliveryStatus::Played,
                DeliveryStatus::Failed
            ]),
            opt_text(),
            opt_text(),
            prop::collection::vec((any::<i64>(), "[a-z ]{0,12}"), 0..3),
            prop::option::of(reported()),
        )
            .prop_map(|(id, status, recipient, participant, errors, reported)| {
                EventKind::MessageStatus(MessageStatus {
                    message_id: id.into(),
                    status,
                    recipient: recipient.map(Into::into),
                    participant: participant.map(Into::into),
                    errors: errors.into_iter().map(|(code, title)| StatusError { code, title }).collect(),
                    reported,
                })
            }),
        (text(), reported()).prop_map(|(id, reported)| {
            EventKind::PricingReport(ledger_core::PricingReport { message_id: id.into(), reported })
        }),
        (text(), text(), template_category(), any::<i64>()).prop_map(|(name, language, category, at)| {
            EventKind::TemplateCategoryChange(TemplateCategoryChange {
                name,
                language,
                category,
                effective_at: Timestamp(at),
            })
        }),
        (text(), opt_text(), opt_text()).prop_map(|(time_zone, currency, business_id)| {
            EventKind::AccountSettings(AccountSettings { time_zone, currency, business_id })
        }),
        (text(), text(), text(), 2000i32..2100, 1u32..13, any::<i64>()).prop_map(
            |(pricing_category, region, tier, year, month, at)| EventKind::VolumeTierUpdate(
                VolumeTierUpdate {
                    pricing_category,
                    region,
                    tier,
                    effective_month: LocalMonth { year, month },
                    tier_update_time: Timestamp(at),
                }
            )
        ),
    ]
}

fn event() -> impl Strategy<Value = Event> {
    (text(), 1u32..3, any::<i64>(), any::<i64>(), text(), text(), (text(), text()), kind()).prop_map(
        |(id, version, event_time, receive_time, provider, waba, (phone, user), kind)| Event {
            event_id: id.into(),
            schema_version: version,
            event_time: Timestamp(event_time),
            receive_time: Timestamp(receive_time),
            provider,
            waba_id: waba.into(),
            contact: kind.is_contact_scoped().then(|| ContactKey::new(&phone, &user)),
            kind,
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn events_round_trip_through_protobuf(event in event()) {
        let bytes = encode_event(&event);
        prop_assert_eq!(decode_event(&bytes).expect("decodes"), event);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode_event(&bytes);
    }
}

#[test]
fn an_event_without_a_kind_is_refused_with_the_field_named() {
    let bytes = v1::Event { event_id: "e1".into(), ..v1::Event::default() }.encode_to_vec();
    let error = decode_event(&bytes).expect_err("no kind");
    assert!(matches!(error, DecodeError::Convert(ConvertError::Missing("kind"))), "{error}");
}

#[test]
fn an_unspecified_status_is_refused() {
    let bytes = v1::Event {
        event_id: "e1".into(),
        kind: Some(v1::event::Kind::MessageStatus(v1::MessageStatus {
            message_id: "wamid.1".into(),
            ..v1::MessageStatus::default()
        })),
        ..v1::Event::default()
    }
    .encode_to_vec();
    let error = decode_event(&bytes).expect_err("unspecified");
    assert_eq!(error.to_string(), "message_status.status is missing");
}

#[test]
fn entries_map_to_protobuf_field_by_field() {
    let event = |id: &str, t: i64, kind: EventKind| Event {
        event_id: id.into(),
        schema_version: 1,
        event_time: Timestamp(t),
        receive_time: Timestamp(t),
        provider: "test".into(),
        waba_id: "waba-1".into(),
        contact: Some(ContactKey::new("pn-1", "15551230001")),
        kind,
    };
    let t0 = 1_756_684_800; // 2025-09-01, per-message pricing
    let mut ledger = Ledger::new(LedgerConfig::default());
    let mut journal = Vec::new();
    let send = SendRecord {
        message_id: "wamid.M1".into(),
        recipient: Some("15551230001".into()),
        content: SendContent::Template(TemplateUse {
            name: "promo".into(),
            language: "en".into(),
            category: TemplateCategory::Marketing,
        }),
        marketing_lite: false,
        meta_business_agent: None,
    };
    let delivered = MessageStatus {
        message_id: "wamid.M1".into(),
        status: DeliveryStatus::Delivered,
        recipient: None,
        participant: None,
        errors: vec![],
        reported: None,
    };
    ledger.apply(event("send", t0, EventKind::SendRecord(send.clone())), &mut journal).expect("ok");
    ledger.apply(event("delivered", t0 + 5, EventKind::MessageStatus(delivered)), &mut journal).expect("ok");
    assert_eq!(journal.len(), 1);
    let bytes = ledger_proto::encode_entry(&journal[0]);
    let entry = v1::Entry::decode(bytes.as_slice()).expect("decodes");
    assert_eq!(entry.id, journal[0].id.0.to_be_bytes().to_vec());
    assert_eq!(entry.action(), v1::EntryAction::Post);
    assert!(entry.billable);
    assert_eq!(entry.pricing_type(), v1::PricingType::Regular);
    assert_eq!(entry.rules, vec!["R51".to_owned(), "R4".to_owned()]);
    assert_eq!(entry.evidence, vec!["send".to_owned(), "delivered".to_owned()]);
    let context = entry.context.expect("context");
    assert_eq!((context.local_month.as_str(), context.time_zone_assumed), ("2025-09", true));
    let Some(v1::entry::Fact::MessageBilled(message)) = entry.fact else { panic!("message_billed") };
    assert_eq!(
        (
            message.message_id.as_str(),
            message.pricing_model.as_str(),
            message.category.as_str(),
            message.delivered_at
        ),
        ("wamid.M1", "PMP", "marketing", t0 + 5)
    );
    assert_eq!(message.template_name.as_deref(), Some("promo"));
    assert!(message.participants.is_empty());

    // R59: the same template to a group, delivered to two participants: both are on the entry.
    let to_group = |id: &str, at: i64, kind: EventKind| Event {
        contact: Some(ContactKey::new("pn-1", "group-1")),
        ..event(id, at, kind)
    };
    let send = SendRecord { message_id: "wamid.G1".into(), recipient: Some("group-1".into()), ..send };
    ledger.apply(to_group("send-g", t0 + 10, EventKind::SendRecord(send)), &mut journal).expect("ok");
    for (n, participant) in ["919876543211", "919876543210"].into_iter().enumerate() {
        let delivered = MessageStatus {
            message_id: "wamid.G1".into(),
            status: DeliveryStatus::Delivered,
            recipient: Some("group-1".into()),
            participant: Some(participant.into()),
            errors: vec![],
            reported: None,
        };
        let kind = EventKind::MessageStatus(delivered);
        ledger.apply(to_group(&format!("delivered-{n}"), t0 + 11, kind), &mut journal).expect("ok");
    }
    let entry = v1::Entry::decode(ledger_proto::encode_entry(journal.last().expect("entry")).as_slice())
        .expect("decodes");
    let Some(v1::entry::Fact::MessageBilled(message)) = entry.fact else { panic!("message_billed") };
    assert_eq!(message.category, "group_marketing");
    assert_eq!(message.participants, vec!["919876543210".to_owned(), "919876543211".to_owned()]);
    assert_eq!(entry.evidence, vec!["send-g".to_owned(), "delivered-0".to_owned(), "delivered-1".to_owned()]);
}

/// Folded traffic: arbitrary events of two contacts of one account within a week starting in
/// one of the eras, with a two-claim allowance so claims move across its boundary.
fn folded_traffic() -> impl Strategy<Value = Vec<Event>> {
    let week = prop::sample::select(vec![
        1_672_531_200i64,
        1_710_000_000,
        1_735_000_000,
        1_756_684_800,
        1_796_083_200,
    ]);
    (week, prop::collection::vec((0i64..7 * 86_400, 0usize..2, kind()), 1..40)).prop_map(|(start, items)| {
        items
            .into_iter()
            .enumerate()
            .map(|(n, (offset, contact, kind))| Event {
                event_id: format!("e{n}").into(),
                schema_version: 1,
                event_time: Timestamp(start + offset),
                receive_time: Timestamp(start + offset),
                provider: "meta_cloud".into(),
                waba_id: "waba-1".into(),
                contact: kind.is_contact_scoped().then(|| ContactKey::new("pn-1", ["u1", "u2"][contact])),
                kind,
            })
            .collect()
    })
}

fn round_trip_entries(events: Vec<Event>) -> Vec<ledger_core::Entry> {
    let mut ledger = Ledger::new(LedgerConfig { allowance_limit: Some(2), ..LedgerConfig::default() });
    let mut journal = Vec::new();
    for event in events {
        let _ = ledger.apply(event, &mut journal);
    }
    journal
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Stored entries decode back to the core's own (ARCHITECTURE "Crates": ledger-proto converts
    /// both ways): every posting and reversal of a fold, field for field.
    #[test]
    fn folded_entries_round_trip_through_protobuf(events in folded_traffic()) {
        for entry in round_trip_entries(events) {
            let bytes = ledger_proto::encode_entry(&entry);
            prop_assert_eq!(ledger_proto::decode_entry(&bytes).expect("decodes"), entry);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_as_entries(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = ledger_proto::decode_entry(&bytes);
    }
}

/// The bundled samples' entries (every era, entry point windows, allowances, reversals) decode
/// back to what was encoded.
#[test]
fn the_bundled_samples_entries_round_trip() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut events = Vec::new();
    for file in ["sample-events.jsonl", "service-allowance-2026-12.jsonl"] {
        let text = std::fs::read_to_string(root.join(file)).expect("sample");
        events.extend(text.lines().map(|line| serde_json::from_str::<Event>(line).expect("event")));
    }
    let mut ledger = Ledger::new(LedgerConfig::default());
    let mut journal = Vec::new();
    for event in events {
        let _ = ledger.apply(event, &mut journal);
    }
    assert!(journal.len() > 1_000, "entries: {}", journal.len());
    assert!(journal.iter().any(|e| e.action == ledger_core::EntryAction::Reverse), "reversals among them");
    for entry in journal {
        let bytes = ledger_proto::encode_entry(&entry);
        assert_eq!(ledger_proto::decode_entry(&bytes).expect("decodes"), entry);
    }
}
