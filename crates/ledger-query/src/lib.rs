//! The query side and the HTTP API: webhooks and send records in (to the log), answers out
//! (eligibility, timelines, usage, entries, explanations) over the store and the projector's
//! in-memory ledger.

pub mod access;
pub mod billing;
pub mod dead_letters;
pub mod extract;
pub mod health;
pub mod http;
pub mod ingest;
pub mod listener;
pub mod partitioned;
pub mod queries;
pub mod refusals;
pub mod server;
pub mod views;

pub use queries::{EntryFilter, Queries, QueryError};
pub use server::{serve, ServeConfig};
