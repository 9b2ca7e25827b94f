//! Ids no other call shares, in this environment or any other: a fan-out job's, a claim's, the
//! token of a conditional write. The time and a counter keep one process's apart; 64 random bits
//! keep environments apart, whose process ids and clocks may agree.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A new id: hex digits and dashes, at most 50 characters.
pub fn id() -> String {
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{nanos:x}-{:x}-{:x}",
        fastrand::u64(..),
        CALLS.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use super::id;

    #[test]
    fn ids_differ_from_call_to_call() {
        assert_ne!(id(), id());
    }
}
