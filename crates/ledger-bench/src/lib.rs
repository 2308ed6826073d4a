//! Synthetic traffic shaped like Meta Cloud API webhooks (the fields of the fixtures in
//! `../shared/fixtures/webhooks/meta-cloud/`), deterministic for a seed: user messages (some
//! from Click-to-WhatsApp ads) and the statuses of business replies and templates, with the
//! `pricing` block of the per-message era.

use std::fmt::Write as _;

pub const WABA_ID: &str = "102290129340398";
pub const PHONE_NUMBER_ID: &str = "106540352242922";

/// One webhook body and what kind of traffic it is.
#[derive(Debug, Clone)]
pub struct Webhook {
    pub body: String,
    pub is_status: bool,
}

/// How a day's webhooks reach the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// As providers deliver: in time order, each webhook up to `lateness` seconds late.
    Timely { lateness: i64 },
    /// In random order over the whole day: most events are late for their contact, and a
    /// contact's events are as far apart in the log as the day is long (the worst case for the
    /// contact cache).
    Shuffled,
}

/// A day of traffic: each contact writes in (one in five from an ad), gets a reply, and some
/// get a template; every business message yields sent, delivered and read statuses. In random
/// order ([`Arrival::Shuffled`]).
pub fn traffic(seed: u64, contacts: usize, start: i64) -> Vec<Webhook> {
    traffic_arriving(seed, contacts, start, Arrival::Shuffled)
}

/// [`traffic`], arriving as `arrival` says.
pub fn traffic_arriving(seed: u64, contacts: usize, start: i64, arrival: Arrival) -> Vec<Webhook> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut out = Vec::new();
    // When each webhook reaches the ledger (for timely arrival).
    let mut arrives = Vec::new();
    for c in 0..contacts {
        let wa_id = format!("1650555{:07}", c);
        let mut t = start + rng.i64(0..86_400);
        let from_ad = rng.u8(0..5) == 0;
        out.push(Webhook {
            body: inbound(&wa_id, &format!("wamid.in.{seed}.{c}"), t, from_ad),
            is_status: false,
        });
        arrives.push(t);
        let sends = 1 + rng.usize(0..3);
        for s in 0..sends {
            t += rng.i64(60..3_600);
            let category = match (s, rng.u8(0..4)) {
                (0, _) => "service",
                (_, 0) => "marketing",
                (_, 1) => "utility",
                _ => "service",
            };
            let wamid = format!("wamid.out.{seed}.{c}.{s}");
            for (status, delay) in [("sent", 0), ("delivered", 2), ("read", 40)] {
                out.push(Webhook {
                    body: status_body(&wa_id, &wamid, status, t + delay, category),
                    is_status: true,
                });
                arrives.push(t + delay);
            }
        }
    }
    match arrival {
        Arrival::Shuffled => rng.shuffle(&mut out),
        Arrival::Timely { lateness } => {
            let mut order: Vec<(i64, usize)> =
                arrives.iter().enumerate().map(|(n, t)| (t + rng.i64(0..=lateness.max(0)), n)).collect();
            order.sort_unstable();
            let mut slots: Vec<Option<Webhook>> = out.into_iter().map(Some).collect();
            out = order.into_iter().filter_map(|(_, n)| slots[n].take()).collect();
        }
    }
    out
}

/// Only status webhooks (the ingest benchmark's payload).
pub fn statuses(seed: u64, count: usize, start: i64) -> Vec<String> {
    let mut rng = fastrand::Rng::with_seed(seed);
    (0..count)
        .map(|n| {
            let wa_id = format!("1650555{:07}", rng.usize(0..100_000));
            let status = ["sent", "delivered", "read"][n % 3];
            status_body(&wa_id, &format!("wamid.bench.{seed}.{n}"), status, start + n as i64, "utility")
        })
        .collect()
}

fn envelope(value: &str) -> String {
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"{WABA_ID}","changes":[{{"value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"15550783881","phone_number_id":"{PHONE_NUMBER_ID}"}},{value}}},"field":"messages"}}]}}]}}"#
    )
}

pub fn inbound(wa_id: &str, wamid: &str, t: i64, from_ad: bool) -> String {
    let mut message = format!(
        r#""contacts":[{{"profile":{{"name":"Test"}},"wa_id":"{wa_id}"}}],"messages":[{{"from":"{wa_id}","id":"{wamid}","timestamp":"{t}","type":"text","text":{{"body":"Hello"}}"#
    );
    if from_ad {
        let _ = write!(
            message,
            r#","referral":{{"source_url":"https://fb.me/ad","source_id":"120210{}","source_type":"ad","headline":"Offer","body":"Ad","media_type":"image","image_url":"https://example.com/a.jpg","ctwa_clid":"clid.{wamid}"}}"#,
            t % 7
        );
    }
    message.push_str("}]");
    envelope(&message)
}

pub fn status_body(wa_id: &str, wamid: &str, status: &str, t: i64, category: &str) -> String {
    let (billable, kind) =
        if category == "service" { (false, "free_customer_service") } else { (true, "regular") };
    envelope(&format!(
        r#""statuses":[{{"id":"{wamid}","status":"{status}","timestamp":"{t}","recipient_id":"{wa_id}","pricing":{{"billable":{billable},"pricing_model":"PMP","type":"{kind}","category":"{category}"}}}}]"#
    ))
}
