//! Recovery of missed group messages (protocol: "Recovery of missed group messages").
//!
//! A `send` to one group takes the next offset of the group's stream (one atomic `ADD`, so that
//! concurrent senders never share or skip one), keeps the frame it delivers under that offset,
//! and only then pushes it: a client that joins and asks for history either was a member when the
//! fan-out read the group, or finds the message kept. A client back from a reconnect asks for what
//! came after the last offset it saw; `recovered` tells it whether that is everything.
//!
//! The window is `HISTORY_SIZE` messages and `HISTORY_SECONDS`; every kept message carries a TTL
//! and reads ignore expired ones. A stream's head lives as long as a connection may: a client
//! holding a position of it can still be told whether it missed something.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::Error;
use crate::gateway::Gateway;
use crate::push::Push;
use crate::store::{expiry_from_now, Kept, Position, Store};

/// What a history frame carries at most: a push holds 128 KiB, and the frame wraps them.
const HISTORY_FRAME_BYTES: usize = 100 * 1024;

/// The answer to `history`.
#[derive(Debug, PartialEq, Eq)]
pub struct Recovery {
    /// Where the stream is now (epoch `""` and offset 0 when the group has no stream).
    pub top: Position,
    /// Whether `messages` hold everything after the position asked from.
    pub recovered: bool,
    pub messages: Vec<Kept>,
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

    /// Takes the next place in `group`'s stream and keeps the frame `frame_at` makes for it; the
    /// place and the frame, to push.
    pub async fn append(
        &self,
        group: &str,
        frame_at: impl FnOnce(&Position) -> String,
    ) -> Result<(Position, String), Error> {
        let head_expiry = expiry_from_now(self.config.connection_ttl);
        let position = self
            .store
            .advance(group, &fresh_epoch(), head_expiry)
            .await?;
        let frame = frame_at(&position);
        let expiry = expiry_from_now(self.config.history_age);
        self.store
            .keep(group, position.offset, &frame, expiry)
            .await?;
        Ok((position, frame))
    }

    /// Where `group`'s stream is, when streams are on and it has one.
    pub async fn stream_position(&self, group: &str) -> Result<Option<Position>, Error> {
        if !self.keeps_history() {
            return Ok(None);
        }
        Ok(self.store.position(group).await?)
    }

    /// The messages of `group` after `since` (all those kept, without it).
    pub async fn recover(&self, group: &str, since: Option<&Position>) -> Result<Recovery, Error> {
        let Some(top) = self.stream_position(group).await? else {
            return Ok(Recovery {
                top: Position {
                    epoch: String::new(),
                    offset: 0,
                },
                recovered: since.is_none(),
                messages: Vec::new(),
                more: false,
            });
        };
        let oldest_kept_after = top.offset.saturating_sub(self.config.history_size);
        let resumable = since.filter(|since| {
            since.epoch == top.epoch && (oldest_kept_after..=top.offset).contains(&since.offset)
        });
        let after = resumable.map_or(oldest_kept_after, |since| since.offset);
        let (messages, more) = self
            .store
            .history(group, after, HISTORY_FRAME_BYTES)
            .await?;
        // Whole when nothing was asked from, or when everything after the position asked from
        // is there: the next offset first, no offset missing between, and (on the last page) the
        // top reached. A missing one aged out, was never kept, or is not kept yet (a concurrent
        // send takes its offset before it keeps its message).
        let recovered = match (since, resumable) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(since), Some(_)) => {
                let offsets = || messages.iter().map(|m| m.offset);
                let contiguous = offsets().zip(offsets().skip(1)).all(|(a, b)| b == a + 1);
                let first = messages.first().map_or(since.offset + 1, |m| m.offset);
                let last = messages.last().map_or(since.offset, |m| m.offset);
                first == since.offset + 1 && contiguous && (more || last >= top.offset)
            }
        };
        Ok(Recovery {
            top,
            recovered,
            messages,
            more,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_differ_from_one_moment_to_the_next() {
        let first = fresh_epoch();
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert_ne!(first, fresh_epoch());
    }
}
