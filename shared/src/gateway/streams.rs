//! Recovery of missed group messages (protocol: "Recovery of missed group messages").
//!
//! A `send` to one group takes the next offset of the group's stream (one atomic `ADD`, so that
//! concurrent senders never share or skip one), keeps the frame it delivers under that offset
//! (while the group's members are read), and only then pushes it: a client that joins and asks for
//! history either was a member when the fan-out read the group, or finds the message kept. A client back from a reconnect asks for what
//! came after the last offset it saw; `recovered` tells it whether that is everything.
//!
//! The window is `HISTORY_SIZE` messages and `HISTORY_SECONDS`; every kept message carries a TTL
//! and reads ignore expired ones. A stream's head lives as long as a connection may: a client
//! holding a position of it can still be told whether it missed something.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::Error;
use crate::gateway::rate_limit;
use crate::gateway::Gateway;
use crate::push::Push;
use crate::store::{expiry_from_now, now_millis, Head, Kept, Position, Store};

/// Added to a send's longest possible time under way, for clock differences between environments.
const IN_FLIGHT_MARGIN_MS: i64 = 5_000;

/// What a history frame carries at most: a push holds 128 KiB, and the frame wraps them.
const HISTORY_FRAME_BYTES: usize = 100 * 1024;

/// The answer to `history`.
#[derive(Debug, PartialEq, Eq)]
pub struct Recovery {
    /// Where the stream is now (epoch `""` and offset 0 when the group has no stream).
    pub top: Position,
    /// Whether `messages` hold everything after the position asked from.
    pub recovered: bool,
    /// The messages kept, oldest first.
    pub messages: Vec<Kept>,
    /// Offsets in the same span whose sends failed before keeping them: delivered to nobody.
    pub skipped: Vec<u64>,
    /// More kept messages follow the last one: ask again from it.
    pub more: bool,
}

/// A fresh epoch: the time a stream starts, and a little noise for two that start at once.
fn fresh_epoch() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "{:x}{:05x}",
        now.as_millis(),
        now.subsec_nanos() % 0x10_0000
    )
}

impl<S: Store, P: Push> Gateway<S, P> {
    /// Whether group streams are on (`HISTORY_SIZE` above 0).
    pub fn keeps_history(&self) -> bool {
        self.config.history_size > 0
    }

    /// Takes the next place in `group`'s stream: the place and the frame `frame_at` makes for
    /// it, to keep ([`Gateway::keep_place`]) before it is pushed.
    pub async fn take_place(
        &self,
        group: &str,
        frame_at: impl FnOnce(&Position) -> String,
    ) -> Result<(Position, String), Error> {
        let head_expiry = expiry_from_now(self.config.connection_ttl);
        // Beside the frame's rate-limit count: an offset taken for a refused frame is marked
        // skipped, so that history does not report it lost.
        let epoch = fresh_epoch();
        let (admitted, position) = futures_util::join!(
            rate_limit::admitted(),
            self.store.advance(group, &epoch, head_expiry)
        );
        let position = position?;
        if let Err(refused) = admitted {
            let expiry = expiry_from_now(self.config.history_age);
            if let Err(e) = self.store.keep(group, &position, None, expiry).await {
                tracing::warn!(
                    group,
                    offset = position.offset,
                    error = %e,
                    "an offset taken by a frame over the rate limit could not be marked skipped",
                );
            }
            return Err(refused);
        }
        let frame = frame_at(&position);
        Ok((position, frame))
    }

    /// Keeps `frame` at `position`. When that fails, the place is marked skipped (best effort)
    /// before the error is returned: the message must then reach nobody, and history must not
    /// report it lost.
    pub async fn keep_place(
        &self,
        group: &str,
        position: &Position,
        frame: &str,
    ) -> Result<(), Error> {
        let expiry = expiry_from_now(self.config.history_age);
        if let Err(e) = self.store.keep(group, position, Some(frame), expiry).await {
            let marked = self.store.keep(group, position, None, expiry).await;
            tracing::warn!(
                group,
                offset = position.offset,
                skipped = marked.is_ok(),
                error = %e,
                "a group message could not be kept, and is not sent",
            );
            return Err(e.into());
        }
        Ok(())
    }

    /// Where `group`'s stream is, when streams are on and it has one.
    pub async fn stream_position(&self, group: &str) -> Result<Option<Position>, Error> {
        Ok(self.stream_head(group).await?.map(|head| head.position))
    }

    async fn stream_head(&self, group: &str) -> Result<Option<Head>, Error> {
        if !self.keeps_history() {
            return Ok(None);
        }
        Ok(self.store.position(group).await?)
    }

    /// The messages of `group` after `since` (all those kept, without it).
    pub async fn recover(&self, group: &str, since: Option<&Position>) -> Result<Recovery, Error> {
        rate_limit::admitted().await?;
        let Some(head) = self.stream_head(group).await? else {
            return Ok(Recovery {
                top: Position {
                    epoch: String::new(),
                    offset: 0,
                },
                recovered: since.is_none(),
                messages: Vec::new(),
                skipped: Vec::new(),
                more: false,
            });
        };
        let top = &head.position;
        let oldest_kept_after = top.offset.saturating_sub(self.config.history_size);
        let resumable = since.filter(|since| {
            since.epoch == top.epoch && (oldest_kept_after..=top.offset).contains(&since.offset)
        });
        let after = resumable.map_or(oldest_kept_after, |since| since.offset);
        let (places, more) = self
            .store
            .history(group, top, after, HISTORY_FRAME_BYTES)
            .await?;
        let recovered = match resumable {
            None => since.is_none(),
            Some(since) => verdict(
                since.offset,
                &head,
                &places,
                more,
                now_millis(),
                self.in_flight(),
            ),
        };
        // Skipped places, expired or not, reached nobody; expired messages are no longer had.
        let skipped = places
            .iter()
            .filter(|p| p.frame.is_none())
            .map(|p| p.offset)
            .collect();
        let messages = places
            .into_iter()
            .filter(|p| p.frame.is_some() && !p.expired)
            .collect();
        Ok(Recovery {
            top: head.position,
            recovered,
            messages,
            skipped,
            more,
        })
    }

    /// How long after taking its offset a send may still keep its message: its writes (the
    /// offset, the keep, the mark that skips it) each within the DynamoDB budget, and a margin
    /// for the clocks of two Lambda environments.
    fn in_flight(&self) -> i64 {
        3 * self.config.dynamodb_timeout.as_millis() as i64 + IN_FLIGHT_MARGIN_MS
    }
}

/// Whether `places` (one history page after offset `since`, of the head's epoch) hold every
/// message delivered after `since`, up to their last one when `more` follow, else up to the head.
///
/// An expired place aged out of the window: lost. A missing offset is a loss only when its send
/// cannot still be under way: when a place after it was kept more than `in_flight` ms ago (the
/// missing one was taken before that), or, for the offsets after the last place, when the head's
/// last offset was taken that long ago. Until then it is not yet kept: not lost. A skipped place
/// (its send failed before keeping it) was delivered to nobody, so nothing is lost there.
pub fn verdict(
    since: u64,
    head: &Head,
    places: &[Kept],
    more: bool,
    now: i64,
    in_flight: i64,
) -> bool {
    let end = match (more, places.last()) {
        (true, Some(last)) => last.offset,
        _ => head.position.offset,
    };
    let mut places = places.iter().peekable();
    for offset in since + 1..=end {
        while places.next_if(|p| p.offset < offset).is_some() {}
        if let Some(place) = places.next_if(|p| p.offset == offset) {
            // A message that aged out is lost; a skipped offset, expired or not, reached nobody.
            if place.expired && place.frame.is_some() {
                return false;
            }
            continue;
        }
        let settled_at = places.peek().map_or(head.taken_at, |next| next.kept_at);
        if now - settled_at > in_flight {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_000_000;
    const IN_FLIGHT: i64 = 30_000;
    const LONG_AGO: i64 = NOW - 60_000;
    const JUST_NOW: i64 = NOW - 1_000;

    fn head(offset: u64, taken_at: i64) -> Head {
        Head {
            position: Position {
                epoch: "e".into(),
                offset,
            },
            taken_at,
        }
    }

    fn kept(offset: u64, kept_at: i64) -> Kept {
        Kept {
            offset,
            frame: Some(format!("m{offset}")),
            kept_at,
            expired: false,
        }
    }

    fn skipped(offset: u64, kept_at: i64) -> Kept {
        Kept {
            frame: None,
            ..kept(offset, kept_at)
        }
    }

    fn expired(offset: u64, kept_at: i64) -> Kept {
        Kept {
            expired: true,
            ..kept(offset, kept_at)
        }
    }

    fn recovered(since: u64, head: Head, places: &[Kept], more: bool) -> bool {
        verdict(since, &head, places, more, NOW, IN_FLIGHT)
    }

    #[test]
    fn every_message_after_the_position_is_recovered() {
        let places = [kept(4, LONG_AGO), kept(5, LONG_AGO), kept(6, LONG_AGO)];
        assert!(recovered(3, head(6, LONG_AGO), &places, false));
    }

    #[test]
    fn nothing_after_the_position_at_the_head_is_recovered() {
        assert!(recovered(6, head(6, LONG_AGO), &[], false));
    }

    #[test]
    fn a_tail_still_being_kept_is_not_a_loss() {
        // 6 was taken a moment ago and its send has not kept it yet.
        assert!(recovered(4, head(6, JUST_NOW), &[kept(5, JUST_NOW)], false));
    }

    #[test]
    fn a_tail_missing_long_after_it_was_taken_is_a_loss() {
        assert!(!recovered(
            4,
            head(6, LONG_AGO),
            &[kept(5, LONG_AGO)],
            false
        ));
    }

    #[test]
    fn a_hole_in_the_middle_while_its_send_may_run_is_not_a_loss() {
        // Two senders: 6 kept just now, 5 taken before it and not kept yet.
        assert!(recovered(4, head(6, JUST_NOW), &[kept(6, JUST_NOW)], false));
    }

    #[test]
    fn a_hole_in_the_middle_long_settled_is_a_loss() {
        let places = [kept(5, LONG_AGO), kept(7, LONG_AGO)];
        assert!(!recovered(4, head(7, LONG_AGO), &places, false));
    }

    #[test]
    fn a_skipped_offset_was_delivered_to_nobody_and_is_not_a_loss() {
        let places = [kept(5, LONG_AGO), skipped(6, LONG_AGO), kept(7, LONG_AGO)];
        assert!(recovered(4, head(7, LONG_AGO), &places, false));
    }

    #[test]
    fn a_message_aged_out_is_a_loss_even_moments_after_it_was_sent() {
        assert!(!recovered(
            4,
            head(5, JUST_NOW),
            &[expired(5, JUST_NOW)],
            false
        ));
    }

    #[test]
    fn a_skipped_offset_past_its_ttl_is_still_not_a_loss() {
        let places = [
            kept(5, LONG_AGO),
            Kept {
                expired: true,
                ..skipped(6, LONG_AGO)
            },
            kept(7, LONG_AGO),
        ];
        assert!(recovered(4, head(7, LONG_AGO), &places, false));
    }

    #[test]
    fn a_page_with_more_is_judged_up_to_its_last_place() {
        // 9 and 10 follow on the next page; this page is whole.
        let places = [kept(5, LONG_AGO), kept(6, LONG_AGO)];
        assert!(recovered(4, head(10, LONG_AGO), &places, true));
    }

    #[test]
    fn an_empty_page_with_the_head_far_ahead_is_a_loss() {
        assert!(!recovered(4, head(9, LONG_AGO), &[], false));
    }

    #[test]
    fn epochs_differ_from_one_moment_to_the_next() {
        let first = fresh_epoch();
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert_ne!(first, fresh_epoch());
    }
}
