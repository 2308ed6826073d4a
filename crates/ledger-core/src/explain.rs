//! Explanations: for any entry, the rule path and the events behind it.

use serde::Serialize;

use crate::event::EventId;
use crate::fact::{Charge, Fact};
use crate::id::Id128;
use crate::journal::{Entry, EntryAction};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleStep {
    pub rule: &'static str,
    pub says: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    pub entry: Id128,
    pub summary: String,
    pub rule_path: Vec<RuleStep>,
    /// The events the conclusion rests on: entry message, send record, delivering status,
    /// category change.
    pub events: Vec<EventId>,
}

pub fn explain(entry: &Entry) -> Explanation {
    let fact = &*entry.fact;
    let rule_path = fact.rules().iter().map(|r| RuleStep { rule: r.id(), says: r.summary() }).collect();
    let verdict = match (entry.billable, entry.free_reason) {
        (true, _) => "billable".to_owned(),
        (false, Some(reason)) => format!("free ({})", reason.as_str()),
        (false, None) => "free".to_owned(),
    };
    let allowance = match fact.charge() {
        Charge::Allowance(pool) => format!(
            "; allowance {} of {} in {} ({} free a month, granted in time order)",
            pool.kind.as_str(),
            pool.scope,
            pool.month,
            pool.kind.limit()
        ),
        _ => String::new(),
    };
    let what = match fact {
        Fact::ConversationOpened(c) => format!(
            "{} conversation opened by {} at {} until {} (era {})",
            c.category.as_str(),
            c.opened_by,
            c.opened_at,
            c.expires_at,
            c.era.number()
        ),
        Fact::MessageBilled(m) if !m.participants.is_empty() => format!(
            "group message {} delivered at {} to {} participants ({}) counted as {}, one charge each (era {})",
            m.message_id,
            m.delivered_at,
            m.participants.len(),
            m.participants.join(", "),
            m.category.as_str(),
            m.era.number()
        ),
        Fact::MessageBilled(m) => format!(
            "message {} delivered at {} counted as {} (era {})",
            m.message_id,
            m.delivered_at,
            m.category.as_str(),
            m.era.number()
        ),
    };
    let action = match entry.action {
        EntryAction::Post => String::new(),
        EntryAction::Reverse => {
            format!(
                "reversal of {}: a later event changed this conclusion; ",
                entry.reverses.map(|r| r.to_string()).unwrap_or_default()
            )
        }
    };
    Explanation {
        entry: entry.id,
        summary: format!("{action}{what}: {verdict}{allowance}"),
        rule_path,
        events: fact.evidence().to_vec(),
    }
}
