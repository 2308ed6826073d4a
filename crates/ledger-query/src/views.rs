//! JSON views of stored entries and their explanations, read straight from the stored
//! `ledger.v1.Entry` (the journal's record of fact).

use ledger_proto::v1;
use serde::Serialize;

/// `FREE_REASON_ENTRY_POINT` → `entry_point`.
fn enum_name(full: &str, prefix: &str) -> Option<String> {
    let name = full.strip_prefix(prefix).unwrap_or(full);
    (name != "UNSPECIFIED").then(|| name.to_ascii_lowercase())
}

fn hex_id(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Debug, Clone, Serialize)]
pub struct EntryView {
    pub id: String,
    pub action: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reverses: Option<String>,
    pub billable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub free_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pricing_type: Option<String>,
    pub waba_id: String,
    pub phone_number_id: String,
    pub user_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
    pub local_month: String,
    pub time_zone: String,
    pub kind: &'static str,
    pub at: i64,
    pub category: String,
    pub era: u32,
    /// Conversations: the message that opened it; messages: the message itself.
    pub message_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pricing_model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowance: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entry_point_source_id: Option<String>,
    /// Group messages (R59): the participants delivered to, one charge each.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub participants: Vec<String>,
    pub rules: Vec<String>,
    pub evidence: Vec<String>,
}

impl From<&v1::Entry> for EntryView {
    fn from(entry: &v1::Entry) -> Self {
        let context = entry.context.clone().unwrap_or_default();
        let contact = context.contact.clone().unwrap_or_default();
        let allowance = |pool: &Option<v1::AllowancePool>| {
            pool.as_ref().map(|p| format!("{} of {} in {}", p.kind, p.scope, p.month))
        };
        let mut view = EntryView {
            id: hex_id(&entry.id),
            action: enum_name(entry.action().as_str_name(), "ENTRY_ACTION_").unwrap_or_default(),
            reverses: (!entry.reverses.is_empty()).then(|| hex_id(&entry.reverses)),
            billable: entry.billable,
            free_reason: enum_name(entry.free_reason().as_str_name(), "FREE_REASON_"),
            pricing_type: enum_name(entry.pricing_type().as_str_name(), "PRICING_TYPE_"),
            waba_id: context.waba_id,
            phone_number_id: contact.phone_number_id,
            user_id: contact.user_id,
            recipient: context.recipient,
            local_month: context.local_month,
            time_zone: context.time_zone,
            kind: "",
            at: 0,
            category: String::new(),
            era: 0,
            message_id: String::new(),
            expires_at: None,
            pricing_model: None,
            conversation: None,
            allowance: None,
            entry_point_source_id: None,
            participants: Vec::new(),
            rules: entry.rules.clone(),
            evidence: entry.evidence.clone(),
        };
        match &entry.fact {
            Some(v1::entry::Fact::ConversationOpened(c)) => {
                view.kind = "conversation_opened";
                view.at = c.opened_at;
                view.category = c.category.clone();
                view.era = c.era;
                view.message_id = c.opened_by.clone();
                view.expires_at = Some(c.expires_at);
                view.allowance = allowance(&c.allowance);
                view.entry_point_source_id = c.entry_point_source_id.clone();
            }
            Some(v1::entry::Fact::MessageBilled(m)) => {
                view.kind = "message_billed";
                view.at = m.delivered_at;
                view.category = m.category.clone();
                view.era = m.era;
                view.message_id = m.message_id.clone();
                view.pricing_model = Some(m.pricing_model.clone());
                view.conversation = m.conversation.clone();
                view.allowance = allowance(&m.allowance);
                view.participants = m.participants.clone();
            }
            None => {}
        }
        view
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct RuleStepView {
    pub rule: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub says: Option<&'static str>,
}

/// Why an entry says what it says: its verdict in words, the rule path and the events.
#[derive(Debug, Clone, Serialize)]
pub struct ExplanationView {
    pub entry: EntryView,
    pub summary: String,
    pub rule_path: Vec<RuleStepView>,
    pub events: Vec<String>,
}

impl TryFrom<&v1::Entry> for ExplanationView {
    type Error = ledger_proto::ConvertError;

    /// The stored entry decoded back to the core's own and explained as the core explains it
    /// (`ledger fold --explain` prints the same), beside the stored entry's view.
    fn try_from(stored: &v1::Entry) -> Result<Self, Self::Error> {
        let entry = ledger_core::Entry::try_from(stored.clone())?;
        let explanation = ledger_core::explain(&entry);
        Ok(ExplanationView {
            entry: EntryView::from(stored),
            summary: explanation.summary,
            rule_path: explanation
                .rule_path
                .into_iter()
                .map(|step| RuleStepView { rule: step.rule.to_owned(), says: Some(step.says) })
                .collect(),
            events: explanation.events.iter().map(ToString::to_string).collect(),
        })
    }
}
