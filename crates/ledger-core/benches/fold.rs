//! Fold throughput on a synthetic, realistic mix of pre-decoded events.
//!
//! 100,000 contacts of one WABA (America/Sao_Paulo) in September 2025 (per-message pricing) and
//! a tenth of them in March 2024 (conversation-based): user messages, a third arriving from
//! Click-to-WhatsApp ads, templates of every category, free-form replies; each business
//! message has a send record and sent/delivered/read statuses, some out of order, some
//! re-delivered, some failed. Contacts are interleaved as a live stream would be.
//!
//! `FOLD_BENCH_CONTACTS=N` shrinks the workload for profiling (e.g. under callgrind); recorded
//! figures use the default.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use ledger_core::{
    AccountSettings, ContactKey, DeliveryStatus, EntryPoint, Event, EventKind, InboundMessage, Ledger,
    LedgerConfig, MessageStatus, SendContent, SendRecord, TemplateCategory, TemplateUse, Timestamp,
};

/// The `ledger` binary's allocator, so the figures are the ones a deployment sees.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CONTACTS: u64 = 100_000;
const WABA: &str = "102290129340398";
const PHONE: &str = "106540352242922";
/// 2025-09-01 00:00 UTC and 2024-03-04 00:00 UTC.
const ERA4_START: i64 = 1_756_684_800;
const ERA2_START: i64 = 1_709_510_400;

/// SplitMix64: deterministic, so every run folds the same events.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn event(id: String, at: i64, received: i64, user: &str, kind: EventKind) -> Event {
    Event {
        event_id: id.into(),
        schema_version: 1,
        event_time: Timestamp(at),
        receive_time: Timestamp(received),
        provider: "meta_cloud".into(),
        waba_id: WABA.into(),
        contact: Some(ContactKey::new(PHONE, user)),
        kind,
    }
}

fn status(user: &str, message: &str, status: DeliveryStatus, at: i64, received: i64) -> Event {
    let name = match status {
        DeliveryStatus::Sent => "sent",
        DeliveryStatus::Delivered => "delivered",
        DeliveryStatus::Read => "read",
        DeliveryStatus::Played => "played",
        DeliveryStatus::Failed => "failed",
    };
    let kind = EventKind::MessageStatus(MessageStatus {
        message_id: message.into(),
        status,
        recipient: Some(user.into()),
        participant: None,
        errors: Vec::new(),
        reported: None,
    });
    event(format!("meta:{message}:{name}"), at, received, user, kind)
}

fn contact_events(rng: &mut Rng, n: u64, out: &mut Vec<Event>) {
    let user = format!("55119{n:08}");
    let start = if n.is_multiple_of(10) { ERA2_START } else { ERA4_START } + rng.below(20 * 86_400) as i64;
    let mut t = start;
    let mut message = 0;
    let inbound_count = 1 + rng.below(3);
    for i in 0..inbound_count {
        let id = format!("wamid.in.{n}.{i}");
        let entry_point = (i == 0 && rng.chance(33)).then(|| EntryPoint {
            source_id: Some(format!("ad-{}", rng.below(50))),
            source_type: Some("ad".into()),
            ctwa_clid: Some(format!("clid-{n}")),
            ..EntryPoint::default()
        });
        let kind = EventKind::InboundMessage(InboundMessage { message_id: id.clone().into(), entry_point });
        out.push(event(format!("meta:{id}"), t, t + 1, &user, kind));
        t += 60 + rng.below(3_600) as i64;
        for _ in 0..(1 + rng.below(3)) {
            message += 1;
            let id = format!("wamid.out.{n}.{message}");
            let content = match rng.below(5) {
                0 => SendContent::NonTemplate { kind: "text".into() },
                1 | 2 => template(TemplateCategory::Utility),
                3 => template(TemplateCategory::Marketing),
                _ => template(TemplateCategory::Authentication),
            };
            let record = SendRecord {
                message_id: id.clone().into(),
                recipient: Some(user.as_str().into()),
                content,
                marketing_lite: false,
                meta_business_agent: None,
            };
            out.push(event(format!("send:{id}"), t, t, &user, EventKind::SendRecord(record)));
            out.push(status(&user, &id, DeliveryStatus::Sent, t + 1, t + 2));
            if rng.chance(3) {
                out.push(status(&user, &id, DeliveryStatus::Failed, t + 2, t + 3));
            } else if rng.chance(10) {
                // Read arrives before delivered (W1).
                out.push(status(&user, &id, DeliveryStatus::Read, t + 30, t + 31));
                out.push(status(&user, &id, DeliveryStatus::Delivered, t + 3, t + 40));
            } else {
                out.push(status(&user, &id, DeliveryStatus::Delivered, t + 3, t + 4));
                if rng.chance(60) {
                    out.push(status(&user, &id, DeliveryStatus::Read, t + 120, t + 121));
                }
            }
            if rng.chance(5) {
                // Re-delivered webhook (W2).
                let copy = out.last().expect("just pushed").clone();
                out.push(copy);
            }
            t += 300 + rng.below(6 * 3_600) as i64;
        }
        t += rng.below(30 * 3_600) as i64;
    }
}

fn template(category: TemplateCategory) -> SendContent {
    SendContent::Template(TemplateUse {
        name: format!("{}_v3", category.as_str()).into(),
        language: "pt_BR".into(),
        category,
    })
}

fn workload() -> Vec<Event> {
    let mut rng = Rng(0x5EED);
    let settings = Event {
        event_id: "settings".into(),
        schema_version: 1,
        event_time: Timestamp(ledger_core::event::EVENT_TIME_MIN),
        receive_time: Timestamp(0),
        provider: "meta_cloud".into(),
        waba_id: WABA.into(),
        contact: None,
        kind: EventKind::AccountSettings(AccountSettings {
            time_zone: "America/Sao_Paulo".into(),
            currency: Some("USD".into()),
            business_id: Some("biz".into()),
        }),
    };
    let mut events = vec![settings];
    let contacts = std::env::var("FOLD_BENCH_CONTACTS").ok().and_then(|v| v.parse().ok()).unwrap_or(CONTACTS);
    for n in 0..contacts {
        contact_events(&mut rng, n, &mut events);
    }
    // Interleave contacts by arrival, as the log would deliver them.
    events.sort_by_key(|e| e.receive_time);
    events
}

fn fold_all(events: Vec<Event>) -> (Ledger, Vec<ledger_core::Entry>) {
    let mut ledger = Ledger::new(LedgerConfig::default());
    let mut journal = Vec::with_capacity(events.len());
    for event in events {
        let _ = ledger.apply(event, &mut journal);
    }
    // Returned, so criterion drops the state after timing: teardown is not folding.
    (ledger, journal)
}

fn fold(c: &mut Criterion) {
    let interleaved = workload();
    // A projector batch groups the events of a contact together (same per-contact order).
    let mut grouped = interleaved.clone();
    grouped.sort_by(|a, b| a.contact.cmp(&b.contact));

    let mut group = c.benchmark_group("fold");
    group.sample_size(10);
    group.throughput(Throughput::Elements(interleaved.len() as u64));
    for (name, events) in [("interleaved", &interleaved), ("grouped_by_contact", &grouped)] {
        group.bench_function(format!("{name}/{}_events_{CONTACTS}_contacts", events.len()), |b| {
            b.iter_batched(|| events.clone(), |events| black_box(fold_all(events)), BatchSize::PerIteration)
        });
    }
    group.finish();
}

criterion_group!(benches, fold);
criterion_main!(benches);
