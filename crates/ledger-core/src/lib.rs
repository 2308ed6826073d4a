//! The conversation ledger's rules engine.
//!
//! Pure: no async, no IO, no clock. A contact's events fold into a timeline and facts
//! (`contact`); facts become append-only journal entries once account-wide allowances are
//! resolved (`ledger`, `journal`). Rules are cited by their ids in
//! `../shared/spec/billing-rules.md` (see [`rules::Rule`]).

mod allowance;
pub mod catalog;
pub mod category;
pub mod contact;
pub mod era;
pub mod event;
pub mod explain;
pub mod fact;
pub mod id;
pub mod journal;
pub mod ledger;
pub mod rules;
pub mod settings;
pub mod time;

pub use category::{
    ConversationCategory, MessageClass, PricingCategory, PricingModel, PricingType, ReportedCategory,
    TemplateCategory,
};
pub use contact::{Eligibility, Ingested, SendPreview};
pub use era::{AccountClock, Era};
pub use event::{
    AccountSettings, BusinessAgentUse, ContactKey, DeliveryStatus, EntryPoint, Event, EventError, EventId,
    EventKind, InboundMessage, MessageId, MessageStatus, PricingReport, ReportedCost, ReportedPricing,
    SendContent, SendRecord, StatusError, TemplateCategoryChange, TemplateUse, VolumeTierUpdate, WabaId,
    SCHEMA_VERSION,
};
pub use explain::{explain, Explanation};
pub use fact::{AllowanceKind, AllowancePool, Charge, Fact, FreeReason};
pub use id::Id128;
pub use journal::{Entry, EntryAction, Resolution, StoredJournal, StoredPosting};
pub use ledger::{
    ContactStates, FoldError, FreeGrant, InMemory, Ledger, LedgerConfig, StatesError, StoredClaim,
    StoredContact,
};
pub use settings::{AllowanceScope, RuleSettings, SettingsError};
pub use time::{LocalMonth, Timestamp};
