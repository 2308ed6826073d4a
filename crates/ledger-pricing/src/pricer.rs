//! Turns journal entries into priced invoice lines.
//!
//! The core decided what is billable (ARCHITECTURE decision 6); this decides how much: the card in
//! force on the charge's local date (R6), the recipient's market (R5), the authentication-
//! international rate where the business is eligible (R29) and the volume tier (R54).
//!
//! Volume tiers are marginal and accrue per portfolio × market × category family × month in each
//! WABA's own time zone (so during the hours two WABAs of one portfolio sit in different months,
//! each accrues toward its own month, S11.3). A charge takes the tier of its position in the
//! journal — the order in which the ledger learned of charges, as Meta counts in the order it
//! bills. A reversal gives its position back and is priced exactly as the posting it reverses,
//! so the sum of lines always equals the live entries priced at the tiers they were posted in.

use std::cell::RefCell;
use std::sync::Arc;

use chrono::NaiveDate;
use chrono_tz::Tz;
use ledger_core::fact::Fact;
use ledger_core::{Entry, EntryAction, LocalMonth, PricingCategory, PricingModel, Timestamp};
use serde::{Deserialize, Serialize};

use crate::card::{RateCard, Tier};
use crate::market::{parse_number, Located, Number, UNKNOWN};
use crate::money::Money;
use crate::Pricing;

/// The identity of an invoice line: everything that decides a count's price.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct LineKey {
    /// `conversation` (eras 1–3) or `message` (eras 4–5).
    pub unit: String,
    /// The rate category applied (`authentication_international` where R29 holds).
    pub category: String,
    pub market: String,
    /// Meta's pricing type: `regular`, `free_customer_service`, `free_entry_point`, `free_tier`.
    pub pricing_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free_reason: Option<String>,
    /// `LOWER:UPPER` of the volume tier a tiered charge fell in (R54).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    pub currency: String,
    /// `None`: no card prices this line (see `unpriced`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_rate: Option<Money>,
    /// The effective date of the card used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<NaiveDate>,
    /// Why a charged line has no rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unpriced: Option<String>,
    /// R84: the rate is the `pricing.cost` a max-price message's status reported, Meta's
    /// estimate ("your billing invoice is the source of truth"), not a card's.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub provisional: bool,
}

impl LineKey {
    /// The key as stored in the `billing` aggregates: JSON with a fixed field order.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a line key always serialises")
    }

    pub fn decode(bytes: &[u8]) -> Result<LineKey, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

/// One entry's contribution to an invoice line. A group message contributes one per market its
/// participants are in (R59).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricedEntry {
    pub waba_id: String,
    /// The charge's month in the WABA's time zone.
    pub month: LocalMonth,
    pub line: LineKey,
    /// The recipients' country (ISO 3166 alpha-2), when their numbers parse.
    pub country: Option<String>,
    /// Charges on the line: +1 per recipient for a posting, −1 per recipient for a reversal.
    pub quantity: i64,
}

/// Volume-tier accrual scope (R54): a portfolio's charges in a market, family and month of
/// the charging WABA's time zone.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Accrual {
    pub business: String,
    pub market: String,
    /// `utility` or `authentication` (authentication-international accrues with it, R54).
    pub family: &'static str,
    pub month: LocalMonth,
}

/// The tier family a fact accrues toward, if it accrues at all (R54): only per-message utility
/// and authentication; paid service messages priced at the utility rate do not (R80), nor does
/// any group delivery (R59 says so for utility; by this ledger's reading, for all).
fn tier_family(fact: &Fact) -> Option<&'static str> {
    let Fact::MessageBilled(message) = fact else { return None };
    if message.pricing_model != PricingModel::Pmp || !message.participants.is_empty() {
        return None;
    }
    match message.category {
        PricingCategory::Utility => Some("utility"),
        PricingCategory::Authentication => Some("authentication"),
        _ => None,
    }
}

/// Where a pricer's tier state is kept beside its memory (the projector's store, under the keys
/// of [`Pricer::take_tier_changes`]): a reversal whose posting's position is no longer in memory
/// finds it there.
pub trait StoredTiers: Send {
    /// The value stored under one of the pricer's keys; `None` if there is none (or it cannot
    /// be read: the implementation reports that).
    fn get(&self, key: &[u8]) -> Option<Vec<u8>>;
}

/// First byte of an accrual's key in the pricer's stored state: accrual → count.
pub const ACCRUAL_KEY_PREFIX: &[u8] = b"a";
/// First byte of a position's key: posting's entry id → accrual and position.
const POSITION_KEY_PREFIX: u8 = b'p';

/// A change of the pricer's stored state: a key and its new value (`None`: deleted).
pub type TierChange = (Vec<u8>, Option<Vec<u8>>);

/// Prices entries in journal order; keeps the tier accruals.
pub struct Pricer {
    pricing: Arc<Pricing>,
    accrued: foldhash::HashMap<Accrual, u64>,
    /// Live tiered postings: entry id → (scope, position), so a reversal returns its slot. With
    /// a store ([`Pricer::keep_tiers_in`]), only those placed since the last
    /// [`Pricer::take_tier_changes`]; the others are in the store.
    positions: foldhash::HashMap<u128, (Accrual, u64)>,
    stored: Option<Box<dyn StoredTiers>>,
    /// Whether changes are collected for [`Pricer::take_tier_changes`].
    tracking: bool,
    /// Positions placed and released since the last take, in order.
    position_changes: Vec<TierChange>,
    /// Accruals moved since the last take.
    moved_accruals: foldhash::HashSet<Accrual>,
    /// Recipients already parsed. libphonenumber's parse is the costliest step of pricing an
    /// entry and a contact's number recurs on every entry; the market still follows the date.
    numbers: RefCell<foldhash::HashMap<Box<str>, Option<Number>>>,
}

impl std::fmt::Debug for Pricer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pricer")
            .field("accruals", &self.accrued.len())
            .field("positions", &self.positions.len())
            .field("stored", &self.stored.is_some())
            .finish_non_exhaustive()
    }
}

/// Parsed recipients kept per pricer before the cache starts over (about 100 MB at most).
const NUMBER_CACHE_CAPACITY: usize = 1 << 20;

/// How a fact is priced, before tiers.
struct Decision<'a> {
    unit: &'static str,
    /// The line's category: the rate category, or a group category (R59).
    category: String,
    /// The card category the rate is read under (a group category's base category).
    rate_category: String,
    located: Located,
    local_date: NaiveDate,
    currency: String,
    business: String,
    card: Option<&'a RateCard>,
}

impl Pricer {
    pub fn new(pricing: Arc<Pricing>) -> Pricer {
        Pricer {
            pricing,
            accrued: Default::default(),
            positions: Default::default(),
            stored: None,
            tracking: false,
            position_changes: Vec::new(),
            moved_accruals: Default::default(),
            numbers: Default::default(),
        }
    }

    /// Collects the changes of the tier state for [`Pricer::take_tier_changes`], keeping every
    /// position in memory too (a store that starts empty).
    pub fn track_tier_changes(&mut self) {
        self.tracking = true;
    }

    /// Continues from a stored tier state: `accruals` are the stored (key, value) pairs under
    /// [`ACCRUAL_KEY_PREFIX`]; positions are read from `stored` when a reversal needs one.
    /// Changes are collected from here on, and positions leave memory once taken.
    pub fn keep_tiers_in(
        &mut self,
        stored: Box<dyn StoredTiers>,
        accruals: Vec<(Vec<u8>, Vec<u8>)>,
    ) -> Result<(), TierStateError> {
        for (key, value) in accruals {
            let accrual = decode_accrual(key.get(1..).unwrap_or_default())?;
            let count = value.as_slice().try_into().map(u64::from_be_bytes).map_err(|_| TierStateError)?;
            self.accrued.insert(accrual, count);
        }
        self.stored = Some(stored);
        self.tracking = true;
        Ok(())
    }

    /// The tier state's changes since the last call, in order, for the store to write with the
    /// priced entries: the accruals moved (their new counts) and the positions placed and
    /// released.
    pub fn take_tier_changes(&mut self) -> Vec<TierChange> {
        let mut changes = std::mem::take(&mut self.position_changes);
        for accrual in self.moved_accruals.drain() {
            let count = self.accrued.get(&accrual).copied().unwrap_or(0);
            let mut key = ACCRUAL_KEY_PREFIX.to_vec();
            encode_accrual(&mut key, &accrual);
            changes.push((key, Some(count.to_be_bytes().to_vec())));
        }
        if self.stored.is_some() {
            self.positions.clear();
        }
        changes
    }

    /// Where a recipient is on `date` (R5), parsing each distinct number once.
    fn locate(&self, recipient: &str, date: NaiveDate) -> Located {
        let mut numbers = self.numbers.borrow_mut();
        if let Some(number) = numbers.get(recipient) {
            return self.pricing.markets.locate_number(number.as_ref(), date);
        }
        if numbers.len() >= NUMBER_CACHE_CAPACITY {
            numbers.clear();
        }
        let number = parse_number(recipient);
        let located = self.pricing.markets.locate_number(number.as_ref(), date);
        numbers.insert(recipient.into(), number);
        located
    }

    /// The markets of an entry's recipients on its charge date (R5), with how many recipients
    /// each: one recipient, or a group message's participants (R59).
    pub fn markets(&self, entry: &Entry) -> Vec<(String, u64)> {
        let fact = &entry.fact;
        let date = local_date(fact);
        let mut markets: Vec<(String, u64)> = Vec::with_capacity(1);
        for recipient in recipients(fact) {
            let market = self.locate(recipient, date).market;
            match markets.iter_mut().find(|(m, _)| *m == market) {
                Some((_, count)) => *count += 1,
                None => markets.push((market, 1)),
            }
        }
        markets
    }

    /// The entry's invoice lines and quantities; none for messages priced with their
    /// conversation (CBP messages never carry a charge of their own, R10, R21). A group message
    /// is charged once per participant delivered to, at each one's market rate (R59, S13): one
    /// line per distinct (market, rate).
    pub fn price(&mut self, entry: &Entry) -> Vec<PricedEntry> {
        let fact = &entry.fact;
        if let Fact::MessageBilled(m) = &**fact {
            if m.pricing_model == PricingModel::Cbp {
                return Vec::new();
            }
        }
        let sign = match entry.action {
            EntryAction::Post => 1,
            EntryAction::Reverse => -1,
        };
        let mut lines: Vec<PricedEntry> = Vec::with_capacity(1);
        for recipient in recipients(fact) {
            let priced = self.price_for(entry, recipient, sign);
            match lines.iter_mut().find(|l| l.line == priced.line) {
                Some(same) => same.quantity += sign,
                None => lines.push(priced),
            }
        }
        lines
    }

    /// One recipient's charge for an entry.
    fn price_for(&mut self, entry: &Entry, recipient: &str, quantity: i64) -> PricedEntry {
        let fact = &entry.fact;
        let pricing = self.pricing.clone();
        let date = local_date(fact);
        let decision = pricing.decide(fact, entry.billable, self.locate(recipient, date), date);
        let pricing_type = entry.usage_columns().2.to_owned();
        let mut line = LineKey {
            unit: decision.unit.to_owned(),
            category: decision.category.clone(),
            market: decision.located.market.clone(),
            pricing_type,
            free_reason: entry.free_reason.map(|r| r.as_str().to_owned()),
            tier: None,
            currency: decision.currency.clone(),
            unit_rate: None,
            card: decision.card.map(|c| c.effective_from),
            unpriced: None,
            provisional: false,
        };
        let reported_cost = match &**fact {
            Fact::MessageBilled(m) if m.participants.is_empty() => {
                m.reported.as_ref().and_then(|r| r.cost.as_ref())
            }
            _ => None,
        };
        if !entry.billable {
            line.unit_rate = Some(Money::ZERO);
        } else if decision.category == PricingCategory::MetaBusinessAgent.as_str() {
            line.card = None;
            line.unpriced = Some(
                "Meta Business Agent: charged per token (USD 2.00 per 1M tokens) to the business's separate \
                 agent account, never from the rate card (R83b)"
                    .into(),
            );
        } else if let Some(cost) = reported_cost {
            // R84: Meta charges a max-price message what its status reports, at most the bid.
            line.card = None;
            line.provisional = true;
            match cost.amount.parse::<Money>() {
                Ok(amount) if cost.currency == decision.currency && amount >= Money::ZERO => {
                    line.unit_rate = Some(amount)
                }
                Ok(_) if cost.currency != decision.currency => {
                    line.unpriced = Some(format!(
                        "the reported cost is in {}, the account is billed in {} (R84)",
                        cost.currency, decision.currency
                    ))
                }
                _ => {
                    line.unpriced =
                        Some(format!("the reported cost {:?} is not an amount (R84)", cost.amount))
                }
            }
        } else {
            let position = self.position(entry, fact, &decision);
            let rate = card_rate(
                decision.card,
                &decision.located.market,
                &decision.rate_category,
                position.unwrap_or(1),
                (&decision.currency, decision.local_date),
            );
            match rate {
                Ok(tier) => {
                    line.unit_rate = Some(tier.rate);
                    line.tier = position.map(|_| tier.label());
                }
                Err(reason) => line.unpriced = Some(reason),
            }
        }
        PricedEntry {
            waba_id: fact.context().waba_id.to_string(),
            month: fact.context().local_month,
            line,
            country: decision.located.country,
            quantity,
        }
    }

    /// The business portfolio a WABA's charges accrue under (R54): its configured business, or
    /// the WABA itself.
    pub fn business_of<'a>(&'a self, waba_id: &'a str) -> &'a str {
        self.pricing.business_of(waba_id).0
    }

    /// The category a billable fact is charged under (R29 decides authentication; group
    /// messages keep their group category, R59).
    pub fn rate_category(&self, fact: &Fact) -> Option<String> {
        let recipient = recipients(fact).next()?;
        let date = local_date(fact);
        Some(self.pricing.decide(fact, true, self.locate(recipient, date), date).category)
    }

    /// The list (first-tier) rate of `category` for the fact's market on the card in force.
    pub fn list_rate(&self, fact: &Fact, category: &str) -> Option<(Money, String)> {
        let date = local_date(fact);
        let decision = self.pricing.decide(fact, false, self.locate(recipients(fact).next()?, date), date);
        let card = decision.card?;
        let tier = card.rate(&decision.located.market, category, 1)?;
        Some((tier.rate, decision.currency))
    }

    /// The accrual a charged entry counts toward (R54), if any.
    pub fn accrual(&self, entry: &Entry) -> Option<Accrual> {
        let fact = &entry.fact;
        let family = tier_family(fact).filter(|_| entry.billable)?;
        let market = self.locate(recipients(fact).next()?, local_date(fact)).market;
        Some(Accrual {
            business: self.business_of(fact.context().waba_id.as_str()).to_owned(),
            market,
            family,
            month: fact.context().local_month,
        })
    }

    /// The charge's 1-based position in its tier accrual, for tiered categories (R54).
    fn position(&mut self, entry: &Entry, fact: &Fact, decision: &Decision<'_>) -> Option<u64> {
        let family = tier_family(fact)?;
        let key = Accrual {
            business: decision.business.clone(),
            market: decision.located.market.clone(),
            family,
            month: fact.context().local_month,
        };
        match entry.action {
            EntryAction::Post => {
                let accrued = self.accrued.entry(key.clone()).or_default();
                *accrued += 1;
                let position = *accrued;
                if self.tracking {
                    let mut value = Vec::with_capacity(48);
                    encode_accrual(&mut value, &key);
                    value.extend_from_slice(&position.to_be_bytes());
                    self.position_changes.push((position_key(entry.id.0), Some(value)));
                    self.moved_accruals.insert(key.clone());
                }
                self.positions.insert(entry.id.0, (key, position));
                Some(position)
            }
            EntryAction::Reverse => {
                let reversed = entry.reverses.map(|id| id.0)?;
                let (key, position) = match self.positions.remove(&reversed) {
                    Some(placed) => placed,
                    None => {
                        let value = self.stored.as_ref()?.get(&position_key(reversed))?;
                        decode_position(&value).ok()?
                    }
                };
                if let Some(accrued) = self.accrued.get_mut(&key) {
                    *accrued = accrued.saturating_sub(1);
                }
                if self.tracking {
                    self.position_changes.push((position_key(reversed), None));
                    self.moved_accruals.insert(key.clone());
                }
                Some(position)
            }
        }
    }
}

/// A stored tier state that does not decode: written by another build, or damaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a stored volume tier accrual or position does not decode")]
pub struct TierStateError;

fn position_key(entry_id: u128) -> Vec<u8> {
    let mut key = Vec::with_capacity(17);
    key.push(POSITION_KEY_PREFIX);
    key.extend_from_slice(&entry_id.to_be_bytes());
    key
}

/// An accrual as stored: business and market (u16 length, bytes), family tag, year, month.
fn encode_accrual(out: &mut Vec<u8>, accrual: &Accrual) {
    for text in [&accrual.business, &accrual.market] {
        let bytes = &text.as_bytes()[..text.len().min(u16::MAX as usize)];
        out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
        out.extend_from_slice(bytes);
    }
    out.push(match accrual.family {
        "utility" => b'u',
        _ => b'a',
    });
    out.extend_from_slice(&accrual.month.year.to_be_bytes());
    out.push(accrual.month.month as u8);
}

/// Reads an [`encode_accrual`] from the front of `bytes`; returns it and what follows.
fn read_accrual(bytes: &[u8]) -> Result<(Accrual, &[u8]), TierStateError> {
    let mut rest = bytes;
    let mut text = || -> Result<String, TierStateError> {
        let len =
            u16::from_be_bytes(rest.get(..2).ok_or(TierStateError)?.try_into().map_err(|_| TierStateError)?);
        let body = rest.get(2..2 + len as usize).ok_or(TierStateError)?;
        let text = std::str::from_utf8(body).map_err(|_| TierStateError)?.to_owned();
        rest = &rest[2 + len as usize..];
        Ok(text)
    };
    let business = text()?;
    let market = text()?;
    let (&family, tail) = rest.split_first().ok_or(TierStateError)?;
    let family = match family {
        b'u' => "utility",
        b'a' => "authentication",
        _ => return Err(TierStateError),
    };
    let year =
        i32::from_be_bytes(tail.get(..4).ok_or(TierStateError)?.try_into().map_err(|_| TierStateError)?);
    let month = *tail.get(4).ok_or(TierStateError)? as u32;
    Ok((Accrual { business, market, family, month: LocalMonth { year, month } }, &tail[5..]))
}

fn decode_accrual(bytes: &[u8]) -> Result<Accrual, TierStateError> {
    match read_accrual(bytes)? {
        (accrual, []) => Ok(accrual),
        _ => Err(TierStateError),
    }
}

fn decode_position(bytes: &[u8]) -> Result<(Accrual, u64), TierStateError> {
    let (accrual, rest) = read_accrual(bytes)?;
    let position = rest.try_into().map(u64::from_be_bytes).map_err(|_| TierStateError)?;
    Ok((accrual, position))
}

/// The card category a message category is charged at in `market` (R51, R80): paid service at
/// the utility rate and Marketing Messages Lite at the marketing rate where the card has no column
/// of their own; every other category is its own.
pub(crate) fn card_category<'a>(card: Option<&RateCard>, market: &str, category: &'a str) -> &'a str {
    let fallback = match category {
        "service" => "utility",
        "marketing_lite" => "marketing",
        _ => return category,
    };
    match card {
        Some(card) if !card.has(market, category) => fallback,
        _ => category,
    }
}

/// The band of `card` that prices the `position`-th charge of `rate_category` in `market`, or
/// why there is none (never a guess): an unknown market (R5), no card in force for the account's
/// currency on its local date (R6), or no rate on the card. `billing` is that currency and date.
pub(crate) fn card_rate<'c>(
    card: Option<&'c RateCard>,
    market: &str,
    rate_category: &str,
    position: u64,
    (currency, date): (&str, NaiveDate),
) -> Result<&'c Tier, String> {
    if market == UNKNOWN {
        return Err("the recipient is not a phone number; its market is unknown (R5)".into());
    }
    let card = card.ok_or_else(|| format!("no {currency} rate card in force on {date}"))?;
    card.rate(market, rate_category, position).ok_or_else(|| card.missing_reason(market, rate_category))
}

/// The charge instant's date in the WABA's time zone (R6: cards change at local midnight).
pub(crate) fn local_date(fact: &Fact) -> NaiveDate {
    let context = fact.context();
    let tz: Tz = context.time_zone.parse().unwrap_or(Tz::UTC);
    date_in(tz, fact.at())
}

pub(crate) fn date_in(tz: Tz, at: Timestamp) -> NaiveDate {
    chrono::DateTime::from_timestamp(at.0, 0)
        .map(|utc| utc.with_timezone(&tz).date_naive())
        .unwrap_or_default()
}

/// Whom a fact charges: a group message's participants (R59), else the send record's or
/// status's number, else the contact's user id (a `wa_id` when it is digits).
pub(crate) fn recipients(fact: &Fact) -> impl Iterator<Item = &str> {
    let participants = match fact {
        Fact::MessageBilled(m) => &m.participants[..],
        Fact::ConversationOpened(_) => &[],
    };
    let context = fact.context();
    let single = participants
        .is_empty()
        .then(|| context.recipient.as_deref().filter(|r| !r.is_empty()).unwrap_or(&context.contact.user_id));
    participants.iter().map(|p| &**p).chain(single)
}

impl Pricing {
    /// How a fact is priced for one recipient, `located` on the charge's `local_date`.
    fn decide(&self, fact: &Fact, billable: bool, located: Located, local_date: NaiveDate) -> Decision<'_> {
        let context = fact.context();
        let (business, currency, settings) = self.business_of(context.waba_id.as_str());
        let card = self.book.card(currency, local_date);
        let (unit, category, rate_category) = match fact {
            Fact::ConversationOpened(c) => ("conversation", c.category.as_str(), c.category.as_str()),
            Fact::MessageBilled(m) => ("message", m.category.as_str(), m.category.rate_category().as_str()),
        };
        let mut category = category.to_owned();
        let mut rate_category = rate_category.to_owned();
        // R29: the international rate, where the business is eligible and the recipient is abroad.
        if billable && category == "authentication" {
            if let (Some(settings), Some(country), Some(card)) = (settings, located.country.as_deref(), card)
            {
                if let Some(intl) = &settings.authentication_international {
                    let abroad = settings.primary_location.as_deref() != Some(country);
                    if abroad
                        && fact.at() >= intl.start_for(country)
                        && card.has(&located.market, "authentication_international")
                    {
                        category = "authentication_international".to_owned();
                        rate_category = category.clone();
                    }
                }
            }
        }
        if unit == "message" {
            rate_category = card_category(card, &located.market, &rate_category).to_owned();
        }
        Decision {
            unit,
            category,
            rate_category,
            located,
            local_date,
            currency: currency.to_owned(),
            business: business.to_owned(),
            card,
        }
    }
}
