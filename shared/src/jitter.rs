//! Pauses between attempts that two contenders are unlikely to share.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Full jitter under a ceiling that doubles from 10 ms (up to 160 ms), so that two writes that
/// collided (two frames of one connection, say) do not collide again.
pub fn pause(attempt: u32) -> Duration {
    let ceiling = 10u64 << attempt.min(4);
    let noise = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos()));
    Duration::from_millis(1 + noise % ceiling)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_stay_under_their_ceiling() {
        for attempt in 1..=8 {
            let pause = pause(attempt);
            assert!(pause >= Duration::from_millis(1));
            assert!(pause <= Duration::from_millis(10 << attempt.min(4)));
        }
    }
}
