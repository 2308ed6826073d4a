//! Sunshine Conversations on the WhatsApp channel. The public v2 examples use telegram, twilio
//! and web only (fixture notes, "Gaps"), so these bodies follow the v2 schema with a WhatsApp
//! `source` / `destination`; they are test inputs, not fixtures.

use ledger_core::{DeliveryStatus, EventKind, Timestamp};
use ledger_ingest::{normalize, Limits, Provider};

fn body(event: &str) -> Vec<u8> {
    format!(r#"{{"app":{{"id":"app-1"}},"webhook":{{"id":"wh-1","version":"v2"}},"events":[{event}]}}"#)
        .into_bytes()
}

#[test]
fn a_users_whatsapp_message_is_inbound_with_the_wamid() {
    let event = r#"{"id":"ev-1","createdAt":"2025-09-02T13:00:01.000Z","type":"conversation:message","payload":{
        "conversation":{"id":"c-1","type":"personal"},
        "message":{"id":"sm-1","received":"2025-09-02T13:00:00.900Z",
          "author":{"userId":"u-1","type":"user"},
          "content":{"type":"text","text":"hi"},
          "source":{"type":"whatsapp","integrationId":"int-wa","originalMessageId":"wamid.ABC","originalMessageTimestamp":"2025-09-02T13:00:00.000Z"}}}}"#;
    let normalized =
        normalize(Provider::Sunshine, &body(event), Timestamp(0), &Limits::default()).expect("normalizes");
    assert_eq!(normalized.events.len(), 1);
    let e = &normalized.events[0];
    assert_eq!(
        (e.event_id.as_str(), e.event_time.0, e.waba_id.as_str()),
        ("sunshine:ev-1", 1_756_818_000, "sunshine:app-1")
    );
    assert_eq!(e.contact.as_ref().map(|c| c.to_string()), Some("sunshine:int-wa/u-1".to_owned()));
    let EventKind::InboundMessage(m) = &e.kind else { panic!("inbound") };
    assert_eq!(m.message_id.as_str(), "wamid.ABC");
}

#[test]
fn a_business_message_echo_is_skipped() {
    let event = r#"{"id":"ev-2","createdAt":"2025-09-02T13:00:01.000Z","type":"conversation:message","payload":{
        "message":{"id":"sm-2","author":{"type":"business"},"source":{"type":"whatsapp","integrationId":"int-wa"}}}}"#;
    let normalized =
        normalize(Provider::Sunshine, &body(event), Timestamp(0), &Limits::default()).expect("normalizes");
    assert!(normalized.events.is_empty());
    assert_eq!(normalized.skipped[0].reason, "not a user's message on WhatsApp");
}

#[test]
fn deliveries_map_channel_user_and_failure_to_statuses_of_the_wamid() {
    for (kind, expected) in [
        ("conversation:message:delivery:channel", DeliveryStatus::Sent),
        ("conversation:message:delivery:user", DeliveryStatus::Delivered),
        ("conversation:message:delivery:failure", DeliveryStatus::Failed),
    ] {
        let event = format!(
            r#"{{"id":"ev-{kind}","createdAt":"2025-09-02T14:00:00Z","type":"{kind}","payload":{{
                "user":{{"id":"u-1"}},"destination":{{"type":"whatsapp","integrationId":"int-wa"}},
                "externalMessages":[{{"id":"wamid.OUT"}}],"message":{{"id":"sm-9"}},"isFinalEvent":true,
                "error":{{"code":"uncategorized_error","message":"x"}}}}}}"#
        );
        let normalized = normalize(Provider::Sunshine, &body(&event), Timestamp(0), &Limits::default())
            .expect("normalizes");
        let EventKind::MessageStatus(s) = &normalized.events[0].kind else { panic!("status") };
        assert_eq!((s.message_id.as_str(), s.status), ("wamid.OUT", expected));
        assert_eq!(
            normalized.events[0].contact.as_ref().map(|c| c.to_string()),
            Some("sunshine:int-wa/u-1".to_owned())
        );
    }
}
