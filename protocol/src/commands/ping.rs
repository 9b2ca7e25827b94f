//! `ping`: answered `pong`, without a read or a write (the JavaScript client's heartbeat goes
//! to the template's mock route instead, which costs no invocation at all).

use crate::outgoing::Outgoing;

/// The reply.
pub(crate) fn run() -> Vec<String> {
    vec![Outgoing::Pong.to_json()]
}
