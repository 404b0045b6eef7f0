//! What every criterion benchmark of the workspace shares.

use std::time::Duration;

use criterion::Criterion;

/// The one configuration of the per-record benchmarks: 30 samples of 2 s
/// after 1 s of warm-up, as `BENCHMARKS.md` describes them.
pub fn criterion() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
}
