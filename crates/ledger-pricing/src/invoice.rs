//! Monthly invoices of one WABA: lines by unit × category × market × pricing type (× tier),
//! with count, unit rate, amount and free reason, and totals.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use ledger_core::LocalMonth;
use serde::{Deserialize, Serialize};

use crate::money::Money;
use crate::pricer::{LineKey, PricedEntry};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceLine {
    pub unit: String,
    pub category: String,
    pub market: String,
    pub pricing_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    pub count: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit_rate: Option<Money>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<Money>,
    pub currency: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<NaiveDate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unpriced: Option<String>,
    /// R84: priced at the cost a max-price message's status reported, an estimate.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub provisional: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceTotals {
    /// Every counted unit, free ones included.
    pub count: i64,
    /// Units charged at a non-zero rate.
    pub charged: i64,
    pub amount: Money,
    /// Charged units no card prices (their amount is not in `amount`).
    pub unpriced: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Invoice {
    pub waba_id: String,
    pub month: String,
    /// Currencies other than the first appear only if the WABA's settings changed mid-month.
    pub currency: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub as_of: Option<String>,
    pub lines: Vec<InvoiceLine>,
    pub totals: InvoiceTotals,
}

/// Sums priced entries into lines per WABA and month: what the `billing` aggregates hold.
#[derive(Debug, Clone, Default)]
pub struct LineBook {
    lines: BTreeMap<(String, LocalMonth), BTreeMap<LineKey, i64>>,
}

impl LineBook {
    pub fn add(&mut self, priced: PricedEntry) {
        let lines = self.lines.entry((priced.waba_id, priced.month)).or_default();
        *lines.entry(priced.line).or_default() += priced.quantity;
    }

    pub fn lines(&self, waba_id: &str, month: LocalMonth) -> Vec<(LineKey, i64)> {
        self.lines
            .get(&(waba_id.to_owned(), month))
            .map(|lines| lines.iter().map(|(k, v)| (k.clone(), *v)).collect())
            .unwrap_or_default()
    }
}

impl Invoice {
    /// Builds the invoice from aggregated lines; lines that net to zero are left out.
    pub fn from_lines(
        waba_id: &str,
        month: LocalMonth,
        lines: Vec<(LineKey, i64)>,
        fallback_currency: &str,
    ) -> Invoice {
        let mut merged: BTreeMap<LineKey, i64> = BTreeMap::new();
        for (key, count) in lines {
            *merged.entry(key).or_default() += count;
        }
        let mut out = Vec::new();
        let mut totals = InvoiceTotals { count: 0, charged: 0, amount: Money::ZERO, unpriced: 0 };
        for (key, count) in merged.into_iter().filter(|(_, count)| *count != 0) {
            let amount =
                key.unit_rate.map(|rate| rate.times(count).expect("an invoice line fits in i64 billionths"));
            totals.count += count;
            match amount {
                Some(amount) => {
                    if amount != Money::ZERO {
                        totals.charged += count;
                    }
                    totals.amount = totals.amount.checked_add(amount).expect("invoice total fits");
                }
                None => totals.unpriced += count,
            }
            out.push(InvoiceLine {
                unit: key.unit,
                category: key.category,
                market: key.market,
                pricing_type: key.pricing_type,
                free_reason: key.free_reason,
                tier: key.tier,
                count,
                unit_rate: key.unit_rate,
                amount,
                currency: key.currency,
                card: key.card,
                unpriced: key.unpriced,
                provisional: key.provisional,
            });
        }
        // Charged lines first, then by amount, then by name: what a reader scans for.
        out.sort_by(|a, b| {
            b.amount.unwrap_or(Money(i64::MAX)).cmp(&a.amount.unwrap_or(Money(i64::MAX))).then_with(|| {
                (&a.unit, &a.category, &a.market, &a.pricing_type, &a.tier).cmp(&(
                    &b.unit,
                    &b.category,
                    &b.market,
                    &b.pricing_type,
                    &b.tier,
                ))
            })
        });
        let currency = out.first().map_or(fallback_currency.to_owned(), |l| l.currency.clone());
        Invoice {
            waba_id: waba_id.to_owned(),
            month: month.to_string(),
            currency,
            as_of: None,
            lines: out,
            totals,
        }
    }

    /// One row per line plus a `total` row.
    pub fn to_csv(&self) -> String {
        let mut writer = csv::Writer::from_writer(Vec::new());
        let header = [
            "waba_id",
            "month",
            "unit",
            "category",
            "market",
            "pricing_type",
            "free_reason",
            "tier",
            "count",
            "unit_rate",
            "amount",
            "currency",
            "card",
            "unpriced",
            "provisional",
        ];
        writer.write_record(header).expect("writing to memory");
        let opt = |v: &Option<String>| v.clone().unwrap_or_default();
        for line in &self.lines {
            writer
                .write_record([
                    self.waba_id.clone(),
                    self.month.clone(),
                    line.unit.clone(),
                    line.category.clone(),
                    line.market.clone(),
                    line.pricing_type.clone(),
                    opt(&line.free_reason),
                    opt(&line.tier),
                    line.count.to_string(),
                    line.unit_rate.map(|r| r.to_string()).unwrap_or_default(),
                    line.amount.map(|a| a.to_string()).unwrap_or_default(),
                    line.currency.clone(),
                    line.card.map(|d| d.to_string()).unwrap_or_default(),
                    opt(&line.unpriced),
                    if line.provisional { "reported cost (R84)".into() } else { String::new() },
                ])
                .expect("writing to memory");
        }
        writer
            .write_record([
                self.waba_id.clone(),
                self.month.clone(),
                "total".into(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                self.totals.count.to_string(),
                String::new(),
                self.totals.amount.to_string(),
                self.currency.clone(),
                String::new(),
                if self.totals.unpriced > 0 {
                    format!("{} unpriced", self.totals.unpriced)
                } else {
                    String::new()
                },
                String::new(),
            ])
            .expect("writing to memory");
        String::from_utf8(writer.into_inner().expect("flushing memory")).expect("csv of utf-8 fields")
    }
}
