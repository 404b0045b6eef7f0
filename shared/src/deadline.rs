//! Turning the invocation deadline into a budget for network calls.
//!
//! Every network step takes a [`tokio::time::Instant`] to stop by. It is
//! derived here from the Lambda context, less a safety margin, so the
//! function always has time left to answer.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lambda_runtime::Context;
use tokio::time::Instant;

/// Budget used when the context carries no deadline (a context built by hand
/// in a test or a tool). Lambda itself always sets one.
pub const BUDGET_WITHOUT_DEADLINE: Duration = Duration::from_secs(30);

/// The instant by which work must stop: the invocation deadline less
/// `margin`. It is never earlier than now.
pub fn stop_by(context: &Context, margin: Duration) -> Instant {
    let now = Instant::now();
    now + remaining(context.deadline, now_epoch_ms()).saturating_sub(margin)
}

/// Deadlines below this (September 2001) are not epoch timestamps: local
/// emulators such as `cargo lambda watch` send the timeout itself there.
const PLAUSIBLE_EPOCH_MS: u64 = 1_000_000_000_000;

fn remaining(deadline_epoch_ms: u64, now_epoch_ms: u64) -> Duration {
    if deadline_epoch_ms < PLAUSIBLE_EPOCH_MS {
        return BUDGET_WITHOUT_DEADLINE;
    }
    Duration::from_millis(deadline_epoch_ms.saturating_sub(now_epoch_ms))
}

fn now_epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remaining_time_is_the_gap_to_the_deadline() {
        let now = 1_800_000_000_000;
        assert_eq!(remaining(now + 500, now), Duration::from_millis(500));
    }

    #[test]
    fn a_passed_deadline_leaves_nothing() {
        let now = 1_800_000_000_000;
        assert_eq!(remaining(now - 1_000, now), Duration::ZERO);
    }

    #[test]
    fn a_timeout_sent_where_a_deadline_belongs_gets_the_default_budget() {
        // cargo lambda watch sends `lambda-runtime-deadline-ms: 600000`.
        assert_eq!(
            remaining(600_000, 1_800_000_000_000),
            BUDGET_WITHOUT_DEADLINE
        );
    }

    #[test]
    fn a_context_without_deadline_gets_the_default_budget() {
        assert_eq!(remaining(0, 1_800_000_000_000), BUDGET_WITHOUT_DEADLINE);
        let before = Instant::now();
        let stop = stop_by(&Context::default(), Duration::from_secs(1));
        assert!(stop >= before + BUDGET_WITHOUT_DEADLINE - Duration::from_secs(1));
    }

    #[test]
    fn the_margin_is_taken_off_but_never_below_now() {
        let ctx = test_support::context_expiring_in(Duration::from_millis(200));
        let before = Instant::now();
        let stop = stop_by(&ctx, Duration::from_secs(5));
        assert!(stop >= before && stop <= Instant::now());
    }
}
