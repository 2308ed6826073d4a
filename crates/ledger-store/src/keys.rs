//! Every RocksDB key of the state, encoded in one place.
//!
//! Text components are length-prefixed (u16, big-endian), so any byte string round-trips and
//! no component can run into the next. Instants are i64 with the sign bit flipped, big-endian,
//! so keys of one scope sort by time; ids that follow make keys unique. Scans use the
//! encoded prefix of a scope (`contact_prefix`, `account_prefix`).

use ledger_core::{AllowanceKind, AllowancePool, ContactKey, LocalMonth, StoredClaim, Timestamp, WabaId};
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("malformed {what} key: {reason}")]
pub struct KeyError {
    pub what: &'static str,
    pub reason: &'static str,
}

/// Which events a key holds: one contact's, or an account's own (settings, category changes).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    Contact { waba_id: String, phone_number_id: String, user_id: String },
    Account { waba_id: String },
}

const CONTACT: u8 = b'c';
const ACCOUNT: u8 = b'a';
/// The first byte of every account-scope key (an account's own events, its entry index).
pub const ACCOUNT_SCOPE: u8 = ACCOUNT;

fn put_text(out: &mut Vec<u8>, text: &str) {
    // Ids are short; a component longer than u16::MAX is cut rather than mis-encoded, and
    // ingest limits bodies long before that.
    let bytes = &text.as_bytes()[..text.len().min(u16::MAX as usize)];
    out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
    out.extend_from_slice(bytes);
}

pub fn put_time(out: &mut Vec<u8>, t: i64) {
    out.extend_from_slice(&((t as u64) ^ (1 << 63)).to_be_bytes());
}

struct Reader<'a> {
    bytes: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn fail<T>(&self, reason: &'static str) -> Result<T, KeyError> {
        Err(KeyError { what: self.what, reason })
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], KeyError> {
        if self.bytes.len() < n {
            return self.fail("truncated");
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    fn text(&mut self) -> Result<String, KeyError> {
        let len = u16::from_be_bytes([self.take(1)?[0], self.take(1)?[0]]) as usize;
        match std::str::from_utf8(self.take(len)?) {
            Ok(text) => Ok(text.to_owned()),
            Err(_) => self.fail("component is not UTF-8"),
        }
    }

    fn time(&mut self) -> Result<i64, KeyError> {
        let raw: [u8; 8] =
            self.take(8)?.try_into().map_err(|_| KeyError { what: self.what, reason: "time" })?;
        Ok((u64::from_be_bytes(raw) ^ (1 << 63)) as i64)
    }

    fn id128(&mut self) -> Result<u128, KeyError> {
        let raw: [u8; 16] =
            self.take(16)?.try_into().map_err(|_| KeyError { what: self.what, reason: "id" })?;
        Ok(u128::from_be_bytes(raw))
    }

    fn rest_text(&mut self) -> Result<String, KeyError> {
        let rest = std::mem::take(&mut self.bytes);
        match std::str::from_utf8(rest) {
            Ok(text) => Ok(text.to_owned()),
            Err(_) => self.fail("id is not UTF-8"),
        }
    }

    fn done(&self) -> Result<(), KeyError> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            self.fail("trailing bytes")
        }
    }
}

/// Prefix of every key of one contact (events, entry index, timeline).
pub fn contact_prefix(waba_id: &str, phone_number_id: &str, user_id: &str) -> Vec<u8> {
    let mut out = contact_account_prefix(waba_id);
    out.reserve(4 + phone_number_id.len() + user_id.len());
    put_text(&mut out, phone_number_id);
    put_text(&mut out, user_id);
    out
}

/// Prefix of the keys of every contact of one account.
pub fn contact_account_prefix(waba_id: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + waba_id.len());
    out.push(CONTACT);
    put_text(&mut out, waba_id);
    out
}

/// The (WABA id, phone number id, user id) a [`contact_prefix`] key names.
pub fn parse_contact_prefix(key: &[u8]) -> Result<(String, String, String), KeyError> {
    let mut reader = Reader { bytes: key, what: "contact" };
    if reader.take(1)? != [CONTACT] {
        return reader.fail("not a contact key");
    }
    let parsed = (reader.text()?, reader.text()?, reader.text()?);
    reader.done()?;
    Ok(parsed)
}

/// Prefix of every key of one account's own scope.
pub fn account_prefix(waba_id: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(3 + waba_id.len());
    out.push(ACCOUNT);
    put_text(&mut out, waba_id);
    out
}

pub fn scope_prefix(scope: &Scope) -> Vec<u8> {
    match scope {
        Scope::Contact { waba_id, phone_number_id, user_id } => {
            contact_prefix(waba_id, phone_number_id, user_id)
        }
        Scope::Account { waba_id } => account_prefix(waba_id),
    }
}

fn read_scope(reader: &mut Reader<'_>) -> Result<Scope, KeyError> {
    match reader.take(1)?[0] {
        CONTACT => Ok(Scope::Contact {
            waba_id: reader.text()?,
            phone_number_id: reader.text()?,
            user_id: reader.text()?,
        }),
        ACCOUNT => Ok(Scope::Account { waba_id: reader.text()? }),
        _ => reader.fail("unknown scope tag"),
    }
}

/// `events` family: scope, event time, event id → the encoded `ledger.v1.Event`.
pub fn event_key(scope: &Scope, event_time: i64, event_id: &str) -> Vec<u8> {
    let mut out = scope_prefix(scope);
    put_time(&mut out, event_time);
    out.extend_from_slice(event_id.as_bytes());
    out
}

pub fn decode_event_key(key: &[u8]) -> Result<(Scope, i64, String), KeyError> {
    let mut reader = Reader { bytes: key, what: "event" };
    let scope = read_scope(&mut reader)?;
    let time = reader.time()?;
    Ok((scope, time, reader.rest_text()?))
}

/// `entry_index` family: scope, the fact's instant, entry id → nothing. Each entry is indexed
/// under its contact and its account, so both filters are prefix scans in time order.
pub fn entry_index_key(scope: &Scope, at: i64, entry_id: u128) -> Vec<u8> {
    let mut out = scope_prefix(scope);
    put_time(&mut out, at);
    out.extend_from_slice(&entry_id.to_be_bytes());
    out
}

pub fn decode_entry_index_key(key: &[u8]) -> Result<(Scope, i64, u128), KeyError> {
    let mut reader = Reader { bytes: key, what: "entry index" };
    let scope = read_scope(&mut reader)?;
    let at = reader.time()?;
    let id = reader.id128()?;
    reader.done()?;
    Ok((scope, at, id))
}

/// `entries` family: entry id → the encoded `ledger.v1.Entry`.
pub fn entry_key(entry_id: u128) -> [u8; 16] {
    entry_id.to_be_bytes()
}

/// One usage counter: what the `usage` family counts, per account and local month.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UsageKey {
    pub waba_id: String,
    /// `YYYY-MM` in the account's time zone.
    pub month: String,
    /// `conversation` or `message`.
    pub unit: String,
    pub category: String,
    pub market: String,
    pub pricing_type: String,
}

pub fn usage_month_prefix(waba_id: &str, month: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(12 + waba_id.len());
    put_text(&mut out, waba_id);
    put_text(&mut out, month);
    out
}

pub fn usage_key(key: &UsageKey) -> Vec<u8> {
    let mut out = usage_month_prefix(&key.waba_id, &key.month);
    for part in [&key.unit, &key.category, &key.market, &key.pricing_type] {
        put_text(&mut out, part);
    }
    out
}

pub fn decode_usage_key(key: &[u8]) -> Result<UsageKey, KeyError> {
    let mut reader = Reader { bytes: key, what: "usage" };
    let decoded = UsageKey {
        waba_id: reader.text()?,
        month: reader.text()?,
        unit: reader.text()?,
        category: reader.text()?,
        market: reader.text()?,
        pricing_type: reader.text()?,
    };
    reader.done()?;
    Ok(decoded)
}

/// The store's tag for each allowance kind: part of the `allowances` keys, so never reused.
fn allowance_kind_tag(kind: AllowanceKind) -> u8 {
    match kind {
        AllowanceKind::Era1Conversations => 1,
        AllowanceKind::Era2ServiceConversations => 2,
        AllowanceKind::Era5ServiceMessages => 5,
    }
}

fn allowance_kind_of(tag: u8) -> Option<AllowanceKind> {
    match tag {
        1 => Some(AllowanceKind::Era1Conversations),
        2 => Some(AllowanceKind::Era2ServiceConversations),
        5 => Some(AllowanceKind::Era5ServiceMessages),
        _ => None,
    }
}

/// Prefix of the `allowances` keys of one local month (every pool of it).
pub fn allowance_month_prefix(month: LocalMonth) -> Vec<u8> {
    let mut out = Vec::with_capacity(5);
    out.extend_from_slice(&((month.year as u32) ^ (1 << 31)).to_be_bytes());
    out.push(month.month as u8);
    out
}

/// Prefix of one pool's `allowances` keys: month, kind, scope (a WABA or a phone number).
pub fn allowance_pool_prefix(pool: &AllowancePool) -> Vec<u8> {
    let mut out = allowance_month_prefix(pool.month);
    out.push(allowance_kind_tag(pool.kind));
    put_text(&mut out, &pool.scope);
    out
}

/// `allowances` family: pool, claim instant, fact id → the claim ([`encode_claim`]). A pool's
/// claims sort in the order they are granted in (R13, R26, R80).
pub fn claim_key(pool: &AllowancePool, at: i64, fact_id: u128) -> Vec<u8> {
    let mut out = allowance_pool_prefix(pool);
    put_time(&mut out, at);
    out.extend_from_slice(&fact_id.to_be_bytes());
    out
}

/// The pool, instant and fact id a [`claim_key`] names.
pub fn decode_claim_key(key: &[u8]) -> Result<(AllowancePool, i64, u128), KeyError> {
    let mut reader = Reader { bytes: key, what: "allowance claim" };
    let raw: [u8; 4] = reader.take(4)?.try_into().map_err(|_| KeyError { what: "claim", reason: "year" })?;
    let year = (u32::from_be_bytes(raw) ^ (1 << 31)) as i32;
    let month = reader.take(1)?[0] as u32;
    let Some(kind) = allowance_kind_of(reader.take(1)?[0]) else {
        return reader.fail("unknown allowance kind");
    };
    let scope = reader.text()?;
    let at = reader.time()?;
    let fact_id = reader.id128()?;
    reader.done()?;
    Ok((AllowancePool { kind, scope: scope.into(), month: LocalMonth { year, month } }, at, fact_id))
}

/// A claim's value: the units it draws (u64, big-endian), then its owner's WABA id, phone
/// number id and user id.
pub fn encode_claim(units: u64, (waba_id, contact): &(WabaId, ContactKey)) -> Vec<u8> {
    let mut out = Vec::with_capacity(14 + waba_id.as_str().len() + contact.user_id.len() * 2);
    out.extend_from_slice(&units.to_be_bytes());
    put_text(&mut out, waba_id.as_str());
    put_text(&mut out, &contact.phone_number_id);
    put_text(&mut out, &contact.user_id);
    out
}

pub fn decode_claim(key: &[u8], value: &[u8]) -> Result<StoredClaim, KeyError> {
    let (_, at, fact_id) = decode_claim_key(key)?;
    let mut reader = Reader { bytes: value, what: "allowance claim value" };
    let raw: [u8; 8] = reader.take(8)?.try_into().map_err(|_| KeyError { what: "claim", reason: "units" })?;
    let units = u64::from_be_bytes(raw);
    let waba_id = WabaId::from(reader.text()?.as_str());
    let contact = ContactKey::new(&reader.text()?, &reader.text()?);
    reader.done()?;
    Ok(StoredClaim { at: Timestamp(at), fact_id, units, owner: (waba_id, contact) })
}

/// `accounts` family: a business phone number → the WABA its events came under.
pub fn phone_number_key(phone_number_id: &str) -> Vec<u8> {
    let mut out = vec![PHONE_NUMBER];
    put_text(&mut out, phone_number_id);
    out
}

pub fn decode_phone_number_key(key: &[u8]) -> Result<String, KeyError> {
    let mut reader = Reader { bytes: key, what: "phone number" };
    if reader.take(1)? != [PHONE_NUMBER] {
        return reader.fail("not a phone number key");
    }
    let phone_number_id = reader.text()?;
    reader.done()?;
    Ok(phone_number_id)
}

/// `accounts` family: pricing's own state (volume tier accruals), under keys pricing encodes.
pub fn pricing_state_key(key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + key.len());
    out.push(PRICING_STATE);
    out.extend_from_slice(key);
    out
}

pub const PHONE_NUMBER: u8 = b'n';
pub const PRICING_STATE: u8 = b't';

/// `offsets` family: the rule settings the state was folded under, beside the consumers'
/// positions. Consumer names are printable, so a leading zero byte never collides with one.
pub const RULE_SETTINGS_KEY: &[u8] = b"\x00rule_settings";

/// Present in `offsets` when the contact stage wrote every contact's state from the first record.
pub const CONTACT_STATES_KEY: &[u8] = b"\x00contact_states";

/// Present in `offsets` when the account stage wrote allowance claims, phone numbers and
/// pricing's state from the first record: the store then starts without folding the log.
pub const ACCOUNT_STATES_KEY: &[u8] = b"\x00account_states";

/// What a `history` row counts: a usage counter or an invoice line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryCounter {
    Usage,
    Billing,
}

impl HistoryCounter {
    fn tag(self) -> u8 {
        match self {
            HistoryCounter::Usage => b'u',
            HistoryCounter::Billing => b'b',
        }
    }
}

/// How long a `history` row's instant spans: an hour (totals for the hours before an answer's
/// instant) or a second (the hour it falls in, exactly).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryGrain {
    Hour,
    Second,
}

impl HistoryGrain {
    fn tag(self) -> u8 {
        match self {
            HistoryGrain::Hour => b'h',
            HistoryGrain::Second => b's',
        }
    }

    /// The start of the row an instant (Unix seconds) is counted in.
    pub fn start_of(self, instant: i64) -> i64 {
        match self {
            HistoryGrain::Hour => instant.div_euclid(3_600) * 3_600,
            HistoryGrain::Second => instant,
        }
    }
}

/// Prefix of the `history` rows of one account, month, counter and grain; a row's key goes on
/// with the row's instant ([`put_time`]) and the counter as its own family keys it after the
/// account and month (usage: unit, category, market, pricing type; billing: pricing's line).
pub fn history_prefix(waba_id: &str, month: &str, counter: HistoryCounter, grain: HistoryGrain) -> Vec<u8> {
    let mut out = usage_month_prefix(waba_id, month);
    out.push(counter.tag());
    out.push(grain.tag());
    out
}

/// The `history` row of a counter (its `usage` or `billing` key, which starts with the account
/// and month) moved by entries received in the row that holds `instant`.
pub fn history_key(
    counter_key: &[u8],
    counter: HistoryCounter,
    grain: HistoryGrain,
    instant: i64,
) -> Vec<u8> {
    let month_prefix_len = month_prefix_len(counter_key);
    let mut out = Vec::with_capacity(counter_key.len() + 10);
    out.extend_from_slice(&counter_key[..month_prefix_len]);
    out.push(counter.tag());
    out.push(grain.tag());
    put_time(&mut out, grain.start_of(instant));
    out.extend_from_slice(&counter_key[month_prefix_len..]);
    out
}

/// The length of the account and month a usage or billing key starts with
/// ([`usage_month_prefix`]: two length-prefixed texts); the whole key if it is shorter.
fn month_prefix_len(key: &[u8]) -> usize {
    let text_end = |at: usize| {
        let len = key.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]]) as usize)?;
        Some(at + 2 + len).filter(|end| *end <= key.len())
    };
    text_end(0).and_then(text_end).unwrap_or(key.len())
}

/// The instant and the counter (after the account and month) of a `history` row, given the
/// row's [`history_prefix`].
pub fn decode_history_key<'k>(prefix: &[u8], key: &'k [u8]) -> Result<(i64, &'k [u8]), KeyError> {
    let rest = key.strip_prefix(prefix).ok_or(KeyError { what: "history", reason: "prefix" })?;
    let mut reader = Reader { bytes: rest, what: "history" };
    let at = reader.time()?;
    Ok((at, reader.bytes))
}

/// `offsets` family: present when the `history` rows were written from the first record.
pub const HISTORY_KEY: &[u8] = b"\x00history";

/// `offsets` family: the latest receive time among the records `consumer` projected.
pub fn received_by_key(consumer: &str) -> Vec<u8> {
    let mut out = b"\x00received_by/".to_vec();
    out.extend_from_slice(consumer.as_bytes());
    out
}

/// `dead_letters` family: receive instant, then a sequence number unique within the process
/// run and the instant, so letters list in arrival order.
pub fn dead_letter_key(received_at_micros: i64, sequence: u64) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&((received_at_micros as u64) ^ (1 << 63)).to_be_bytes());
    out[8..].copy_from_slice(&sequence.to_be_bytes());
    out
}

pub fn decode_dead_letter_key(key: &[u8]) -> Result<(i64, u64), KeyError> {
    let mut reader = Reader { bytes: key, what: "dead letter" };
    let at = reader.time()?;
    let raw: [u8; 8] =
        reader.take(8)?.try_into().map_err(|_| KeyError { what: "dead letter", reason: "seq" })?;
    reader.done()?;
    Ok((at, u64::from_be_bytes(raw)))
}
