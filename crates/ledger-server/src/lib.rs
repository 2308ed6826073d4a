//! The process: webhooks and send records in (to the log), the stage threads folding the log
//! into the store, and the HTTP API answering from it (`ledger-query`'s answers); Kafka mode's
//! ingest workers, group members and their routing between members.

pub mod access;
pub mod extract;
pub mod health;
pub mod http;
pub mod ingest;
pub mod listener;
pub mod partitioned;
pub mod priority;
pub mod projection;
pub mod refusals;
pub mod server;

pub use server::{serve, ServeConfig};
