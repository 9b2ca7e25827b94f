//! The per-connection rate limit, which holds however many frames arrive at once.
//!
//! API Gateway invokes one connection's frames concurrently, each possibly in a fresh Lambda
//! environment, so no memory of one environment can bound a burst. Every frame is therefore
//! counted in DynamoDB ([`Store::count_frame`]: one write of a small item per frame), and the
//! count that write returns decides:
//!
//! - within the limit, the frame is carried out;
//! - the first frame over it (the count `limit + 1`, which exactly one invocation sees) pushes the
//!   window's one `rate_limited` error frame; later ones are dropped without a word;
//! - the frame counted `RATE_CLOSE_MULTIPLE × limit + 1` closes the connection.
//!
//! The count never stands before a reply: it starts when the frame's work first asks for it,
//! beside that work's first costly request (a fan-out's recipients Query, a group stream's offset,
//! a join, `presence`, `history`, a session write), and that work waits for it ([`admitted`]): at
//! most `limit` frames per window do costly work, and a burst straddling two windows at most twice
//! that. A frame whose work costs nothing (`ping`, `whoami`, an echo) is answered first and counted
//! after. A count that fails (DynamoDB unreachable) is logged and
//! lets the frame through: the work it gates needs DynamoDB too.
//!
//! An environment that saw a connection over its limit remembers it until the window ends and
//! drops its frames without doing anything for them ([`RateLimiter`]); it still counts them while
//! `RATE_CLOSE_MULTIPLE` is on, so that going on closes the connection however few environments
//! serve it: a refused frame then costs one invocation and one write, until the close.
//!
//! [`Store::count_frame`]: crate::store::Store::count_frame

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::{watch, Notify};

use crate::app::{ErrorCode, Rejection};
use crate::config::Config;
use crate::error::Error;
use crate::gateway::Gateway;
use crate::push::Push;
use crate::store::{now_secs, Store};

/// How long a window's count outlives the window (it is never read after).
const COUNT_KEPT_SECONDS: i64 = 60;

/// What a frame's count says of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    /// Within the limit: carried out.
    Within,
    /// The window's first frame over the limit: refused, and the one that says so.
    Crossed,
    /// Over the limit, already said: refused quietly.
    Over,
    /// Over `RATE_CLOSE_MULTIPLE` times the limit: refused, and the connection is closed.
    Close,
    /// Not counted (the limit is off, or the count failed): carried out.
    Uncounted,
}

impl Standing {
    /// The standing of the `frames`-th frame of a window.
    pub fn of(frames: u64, limit: u32, close_multiple: u32) -> Standing {
        let limit = u64::from(limit);
        if frames <= limit {
            Standing::Within
        } else if close_multiple > 0 && frames == limit * u64::from(close_multiple) + 1 {
            Standing::Close
        } else if frames == limit + 1 {
            Standing::Crossed
        } else {
            Standing::Over
        }
    }

    /// Whether the frame's work may be done.
    pub fn admits(self) -> bool {
        matches!(self, Standing::Within | Standing::Uncounted)
    }

    /// What happened, for the log line.
    pub fn as_str(self) -> &'static str {
        match self {
            Standing::Within => "within the limit",
            Standing::Crossed => "over the limit: refused, and told so",
            Standing::Over => "over the limit: refused quietly",
            Standing::Close => "far over the limit: the connection is closed",
            Standing::Uncounted => "not counted",
        }
    }
}

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
    let closing = match config.rate_close_multiple {
        0 => String::new(),
        n => format!(
            "; a connection sending more than {} frames in a window is closed",
            u64::from(config.rate_limit) * u64::from(n)
        ),
    };
    Rejection::new(
        ErrorCode::RateLimited,
        format!(
            "more than {} frames in {} s: frames are dropped until the window ends; slow down{closing}",
            config.rate_limit,
            config.rate_window.as_secs()
        ),
        None,
    )
}

/// Where the frame's count stands, for the work that waits on it.
#[derive(Clone, Debug)]
enum Gate {
    Counting,
    Open,
    Shut(Rejection),
}

/// What the work of a counted frame holds: where its count stands, and how it asks for it.
#[derive(Clone)]
struct Gatekeeper {
    gate: watch::Receiver<Gate>,
    asked: Arc<Notify>,
}

tokio::task_local! {
    static GATE: Gatekeeper;
}

/// Starts the frame's count without waiting for it, ahead of reads whose result decides what
/// the work asks next (a send's sender, before its stream offset): the count then overlaps them,
/// and [`admitted`] later waits for it. Nothing outside a counted frame.
pub fn begin() {
    let _ = GATE.try_with(|keeper| keeper.asked.notify_one());
}

/// Waits until the frame being handled is known to be within its connection's limit; its
/// `rate_limited` rejection when it is not. Immediate outside a counted frame (`$connect`,
/// `on_close`, a backend).
pub async fn admitted() -> Result<(), Error> {
    let Ok(Gatekeeper { mut gate, asked }) = GATE.try_with(Clone::clone) else {
        return Ok(());
    };
    asked.notify_one();
    let shut = match gate.wait_for(|g| !matches!(g, Gate::Counting)).await {
        Ok(state) => match &*state {
            Gate::Shut(rejection) => Some(rejection.clone()),
            _ => None,
        },
        // The count was dropped unfinished: nothing to wait for.
        Err(_) => None,
    };
    match shut {
        Some(rejection) => Err(Error::Rejected(rejection)),
        None => Ok(()),
    }
}

/// Runs `work` (the frame's handling) and counts its frame in `window`: the count starts when
/// the work first asks for it ([`admitted`], which waits for it), beside the work's first costly
/// request, or once the work is done (a cheap answer). Over the limit, this environment
/// remembers the connection for the rest of the window.
pub async fn counted<S: Store, P: Push, F: Future>(
    gateway: &Gateway<S, P>,
    connection_id: &str,
    window: i64,
    work: F,
) -> (Standing, F::Output) {
    let (open, gate) = watch::channel(Gate::Counting);
    let asked = Arc::new(Notify::new());
    let done = Notify::new();
    let keeper = Gatekeeper {
        gate,
        asked: asked.clone(),
    };
    let work = async {
        let output = GATE.scope(keeper, work).await;
        done.notify_one();
        output
    };
    let count = async {
        tokio::select! {
            () = asked.notified() => {}
            () = done.notified() => {}
        }
        // A connection its own frame ended (its reply met 410) has nothing left to count in;
        // whatever the work does next is let through, as when a count fails. (Every way out of
        // here opens or shuts the gate: a work waiting on it would otherwise wait forever.)
        let standing = if crate::gateway::ended::ended_here(connection_id) {
            Standing::Uncounted
        } else {
            count(gateway, connection_id, window).await
        };
        let state = match standing.admits() {
            true => Gate::Open,
            false => Gate::Shut(refusal(&gateway.config)),
        };
        // Nobody listens once the work is done: nothing to tell.
        let _ = open.send(state);
        standing
    };
    futures_util::join!(count, work)
}

/// Counts the frame in `window`: its standing. Over the limit, this environment remembers the
/// connection for the rest of the window.
pub async fn count<S: Store, P: Push>(
    gateway: &Gateway<S, P>,
    connection_id: &str,
    window: i64,
) -> Standing {
    let config = &gateway.config;
    let expires_at = window + config.rate_window.as_secs() as i64 + COUNT_KEPT_SECONDS;
    match gateway
        .store
        .count_frame(connection_id, window, expires_at)
        .await
    {
        Ok(frames) => {
            let standing = Standing::of(frames, config.rate_limit, config.rate_close_multiple);
            if !standing.admits() {
                gateway.limiter.remember(connection_id, window);
            }
            standing
        }
        Err(e) => {
            tracing::warn!(
                error = %e,
                "the frame could not be counted against the rate limit; it is let through",
            );
            Standing::Uncounted
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_up_to_the_limit_are_within_it() {
        assert_eq!(Standing::of(1, 10, 3), Standing::Within);
        assert_eq!(Standing::of(10, 10, 3), Standing::Within);
    }

    #[test]
    fn only_the_first_frame_over_the_limit_says_so() {
        assert_eq!(Standing::of(11, 10, 3), Standing::Crossed);
        assert_eq!(Standing::of(12, 10, 3), Standing::Over);
        assert_eq!(Standing::of(30, 10, 3), Standing::Over);
    }

    #[test]
    fn only_the_frame_past_the_close_multiple_closes() {
        assert_eq!(Standing::of(31, 10, 3), Standing::Close);
        assert_eq!(Standing::of(32, 10, 3), Standing::Over);
        assert_eq!(Standing::of(1000, 10, 0), Standing::Over, "0 never closes");
        assert_eq!(
            Standing::of(11, 10, 1),
            Standing::Close,
            "a multiple of 1 closes at the first frame over"
        );
    }

    #[test]
    fn only_frames_within_or_uncounted_are_carried_out() {
        assert!(Standing::Within.admits());
        assert!(Standing::Uncounted.admits());
        for refused in [Standing::Crossed, Standing::Over, Standing::Close] {
            assert!(!refused.admits());
        }
    }

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

    #[tokio::test]
    async fn work_outside_a_counted_frame_is_admitted_at_once() {
        assert!(admitted().await.is_ok());
    }

    #[tokio::test]
    async fn work_waits_for_the_count_and_is_refused_when_it_is_over() {
        let (open, gate) = watch::channel(Gate::Counting);
        let config = Config::new("t");
        let keeper = Gatekeeper {
            gate,
            asked: Arc::new(Notify::new()),
        };
        let work = GATE.scope(keeper, admitted());
        let tell = async {
            tokio::task::yield_now().await;
            let _ = open.send(Gate::Shut(refusal(&config)));
        };
        let (result, ()) = futures_util::join!(work, tell);
        match result {
            Err(Error::Rejected(r)) => assert_eq!(r.code, ErrorCode::RateLimited),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
}
