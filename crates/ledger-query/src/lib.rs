//! Answers over a store snapshot: eligibility, timelines, usage, entries, invoices,
//! reconciliation, attribution and explanations, as the store holds them now or as the ledger
//! answered at an earlier instant. No HTTP, no threads of its own: `ledger-server` serves these
//! answers, `ledger-cli` prints them.

pub mod billing;
pub mod dead_letters;
pub mod queries;
pub mod views;

pub use queries::{EntryFilter, Queries, QueryError};
