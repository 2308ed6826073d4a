//! What `/readyz` tells: whether the state is loaded, the projector keeps up, and its writes
//! succeed. A server that answers from frozen state must say so, not "ready".

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long the log may stay ahead of the projector without it advancing before the server
/// says it is not ready.
pub const STALL_AFTER: Duration = Duration::from_secs(60);

#[derive(Debug)]
enum Phase {
    Loading,
    Running,
    /// Writes of the state fail (e.g. a full disk); the projector retries.
    WriteFailing {
        reason: String,
        since: Instant,
    },
    Stopped {
        reason: String,
    },
}

#[derive(Debug)]
struct State {
    phase: Phase,
    /// The projector's position and when it last moved.
    offset: u64,
    moved_at: Instant,
    /// Records in the log beyond the position, when last seen.
    lag: u64,
}

/// The projector's health, written by its thread and read by `/readyz`.
#[derive(Debug)]
pub struct ProjectorHealth {
    state: Mutex<State>,
    stall_after: Duration,
}

impl Default for ProjectorHealth {
    fn default() -> ProjectorHealth {
        ProjectorHealth::with_stall_after(STALL_AFTER)
    }
}

impl ProjectorHealth {
    pub fn with_stall_after(stall_after: Duration) -> ProjectorHealth {
        ProjectorHealth {
            state: Mutex::new(State { phase: Phase::Loading, offset: 0, moved_at: Instant::now(), lag: 0 }),
            stall_after,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The projector is at `offset` with `lag` records beyond it.
    pub fn progress(&self, offset: u64, lag: u64) {
        let mut state = self.state();
        if offset != state.offset || lag == 0 {
            state.moved_at = Instant::now();
        }
        state.offset = offset;
        state.lag = lag;
        if !matches!(state.phase, Phase::Stopped { .. }) {
            state.phase = Phase::Running;
        }
    }

    pub fn write_failing(&self, reason: String) {
        let mut state = self.state();
        let since = match &state.phase {
            Phase::WriteFailing { since, .. } => *since,
            _ => Instant::now(),
        };
        state.phase = Phase::WriteFailing { reason, since };
    }

    pub fn stopped(&self, reason: String) {
        self.state().phase = Phase::Stopped { reason };
    }

    /// `Ok` when ready; otherwise why not.
    pub fn readiness(&self) -> Result<(), String> {
        let state = self.state();
        match &state.phase {
            Phase::Loading => Err("loading state from the log".into()),
            Phase::Stopped { reason } => Err(format!("the projector stopped: {reason}")),
            Phase::WriteFailing { reason, since } => {
                Err(format!("store write failing for {} s: {reason}", since.elapsed().as_secs()))
            }
            Phase::Running if state.lag > 0 && state.moved_at.elapsed() >= self.stall_after => Err(format!(
                "{} log records behind without progress for {} s",
                state.lag,
                state.moved_at.elapsed().as_secs()
            )),
            Phase::Running => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_while_running_and_moving() {
        let health = ProjectorHealth::with_stall_after(Duration::from_millis(30));
        assert!(health.readiness().expect_err("loading").contains("loading"));
        health.progress(10, 5);
        assert!(health.readiness().is_ok());
        std::thread::sleep(Duration::from_millis(40));
        health.progress(10, 5);
        assert!(health.readiness().expect_err("stalled").contains("without progress"));
        health.progress(15, 0);
        assert!(health.readiness().is_ok());
        health.write_failing("No space left on device".into());
        assert!(health.readiness().expect_err("failing").contains("store write failing"));
        health.progress(20, 0);
        assert!(health.readiness().is_ok(), "recovers when writes succeed again");
        health.stopped("panicked".into());
        health.progress(21, 0);
        assert!(health.readiness().expect_err("stopped").contains("stopped"));
    }
}
