//! CPU priority of the stage threads. On two cores the stages (fold, write) and RocksDB's
//! flushes and compactions can keep both cores busy; the threads answering queries then wait
//! for a core behind them (`ledger-bench http`: eligibility p99 in the tens to hundreds of
//! milliseconds). The stages are throughput work with a log in front of them: they take the
//! cores the answers leave, not the other way round.

/// The niceness of the stage threads (0 is the default, 19 the lowest priority). At 10 a
/// thread weighs a tenth of a default one in Linux's scheduler: it still gets every core nobody
/// else wants.
pub const STAGE_NICENESS: i32 = 10;

/// Lowers the calling thread's CPU priority to [`STAGE_NICENESS`]. Threads it starts after
/// this (the stage's write thread) inherit it. Where the system refuses, the stage runs at the
/// default priority and says so once.
pub fn yield_to_queries() {
    let thread = rustix::thread::gettid();
    // On Linux a thread id names one thread for `setpriority(PRIO_PROCESS, …)`.
    if let Err(error) = rustix::process::setpriority_process(Some(thread), STAGE_NICENESS) {
        tracing::warn!(%error, "could not lower the stage thread's CPU priority");
    }
}
