//! The per-connection rate limit, kept off the path of the frame it counts.
//!
//! Every frame is counted in DynamoDB ([`Store::admit`]: exact, and shared by every Lambda
//! environment), but only after the frame has been answered, so no reply and no fan-out waits on
//! that write. A count over the limit is remembered by the environment that made it, which from
//! then on refuses the connection's frames until the window ends, without a request to DynamoDB.
//!
//! How exact it stays: Lambda gives an environment one event at a time, so each environment that
//! serves a connection lets through at most one frame past the limit per window (the frame whose
//! count found it over). A connection gets at most `limit` + (environments serving it) frames
//! answered per window; one sending from a single burst is usually served by a few. A count that
//! fails (DynamoDB unreachable) is logged and lets the frame through.
//!
//! [`Store::admit`]: crate::store::Store::admit

use std::collections::HashMap;
use std::sync::Mutex;

use crate::config::Config;
use crate::gateway::Gateway;
use crate::protocol::{ErrorCode, Rejection};
use crate::push::Push;
use crate::store::{now_secs, Admission, Store};

/// The connections this environment has seen over their limit, and the window in which it did.
#[derive(Debug, Default)]
pub struct RateLimiter {
    limited: Mutex<HashMap<String, i64>>,
}

impl RateLimiter {
    /// The window (epoch seconds of its start) a frame arriving now counts in; `None` when the
    /// limit is off.
    pub fn window(config: &Config) -> Option<i64> {
        if config.rate_limit == 0 {
            return None;
        }
        let length = config.rate_window.as_secs().max(1) as i64;
        Some(now_secs() / length * length)
    }

    /// Whether this environment already counted the connection over its limit in `window`.
    pub fn is_limited(&self, connection_id: &str, window: i64) -> bool {
        self.map().get(connection_id) == Some(&window)
    }

    /// Remembers that the connection went over its limit in `window`, forgetting every
    /// connection remembered for an earlier window (so the map holds only the current window's).
    pub fn remember(&self, connection_id: &str, window: i64) {
        let mut limited = self.map();
        limited.retain(|_, seen| *seen >= window);
        limited.insert(connection_id.to_owned(), window);
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, i64>> {
        // The map is only a memo of counts kept in DynamoDB: after a panic elsewhere it is
        // still usable as it stands.
        self.limited.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The error frame for a frame refused by the limit.
pub fn refusal(config: &Config) -> Rejection {
    Rejection::new(
        ErrorCode::RateLimited,
        format!(
            "more than {} frames in {} s; slow down",
            config.rate_limit,
            config.rate_window.as_secs()
        ),
        None,
    )
}

/// Counts an answered frame in `window`; over the limit, this environment refuses the
/// connection's next frames until the window ends. What happened, for the log line.
pub async fn count<S: Store, P: Push>(
    gateway: &Gateway<S, P>,
    connection_id: &str,
    window: i64,
) -> &'static str {
    match gateway
        .store
        .admit(connection_id, window, gateway.config.rate_limit)
        .await
    {
        Ok(Admission::Allowed | Admission::Unknown) => "within the limit",
        Ok(Admission::Limited) => {
            gateway.limiter.remember(connection_id, window);
            "over the limit: refused until the window ends"
        }
        Err(e) => {
            tracing::warn!(error = %e, "the frame could not be counted against the rate limit; it was answered");
            "count failed"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_is_limited_only_in_the_window_it_went_over_in() {
        let limiter = RateLimiter::default();
        assert!(!limiter.is_limited("a=", 100));
        limiter.remember("a=", 100);
        assert!(limiter.is_limited("a=", 100));
        assert!(!limiter.is_limited("a=", 110), "a new window starts afresh");
        assert!(
            !limiter.is_limited("b=", 100),
            "the limit is per connection"
        );
    }

    #[test]
    fn remembering_a_new_window_forgets_the_old_ones() {
        let limiter = RateLimiter::default();
        limiter.remember("a=", 100);
        limiter.remember("b=", 110);
        assert_eq!(limiter.map().len(), 1);
        assert!(limiter.is_limited("b=", 110));
    }

    #[test]
    fn the_window_is_off_when_the_limit_is() {
        let mut config = Config::new("t");
        config.rate_limit = 0;
        assert_eq!(RateLimiter::window(&config), None);
        config.rate_limit = 5;
        config.rate_window = std::time::Duration::from_secs(10);
        let window = RateLimiter::window(&config).unwrap();
        assert_eq!(window % 10, 0);
        assert!((now_secs() - 10..=now_secs()).contains(&window));
    }
}
