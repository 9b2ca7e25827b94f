//! Every command of the protocol, one file each: how it is read from a frame (`parse`), what
//! the connection's token must allow (`refused`), and what it does (`run`), with its tests.

mod history;
mod join;
mod leave;
mod ping;
mod presence;
mod send;
mod send_message;
mod whoami;

use shared::auth::permissions::Permissions;
use shared::prelude::{Client, ErrorCode, Rejection};
use shared::store::Position;
use shared::Error;

pub use send::{Send, MAX_SEND_ID_BYTES};

use crate::fields::Fields;

/// Every action, in `docs/protocol.md`'s order: the parser dispatches on these, and the fuzzer
/// and the property tests take their actions from here.
pub const ACTIONS: &[&str] = &[
    "sendmessage",
    "ping",
    "whoami",
    "join",
    "leave",
    "send",
    "presence",
    "history",
];

/// A command a client can send, one variant per `action`.
#[derive(Debug, PartialEq)]
pub enum Command {
    /// `sendmessage`: the AWS sample chat's broadcast; `text` is what every connection receives.
    SendMessage {
        /// The text every connection receives.
        text: String,
    },
    /// `ping`: answered `pong`.
    Ping,
    /// `whoami`: the connection's id, uid and groups.
    Whoami,
    /// `join`: become a member of a group.
    Join {
        /// The group.
        group: String,
        /// `"presence":true`: list the members now, and tell of each join and leave from now on.
        presence: bool,
    },
    /// `leave`: stop being a member.
    Leave {
        /// The group.
        group: String,
    },
    /// `send`: a message to a target.
    Send(Send),
    /// `history`: a group's messages after a position (protocol: "Recovery").
    History {
        /// The group.
        group: String,
        /// Where the client's copy ends; `None` for everything kept.
        since: Option<Position>,
    },
    /// `presence`, of one group or (without `group`) of every connection.
    Presence {
        /// The group; `None` for everyone.
        group: Option<String>,
    },
}

impl Command {
    /// The `action` that named this command, for logs and error frames.
    pub fn action(&self) -> &'static str {
        match self {
            Command::SendMessage { .. } => "sendmessage",
            Command::Ping => "ping",
            Command::Whoami => "whoami",
            Command::Join { .. } => "join",
            Command::Leave { .. } => "leave",
            Command::Send(_) => "send",
            Command::Presence { .. } => "presence",
            Command::History { .. } => "history",
        }
    }
}

/// Reads the command `fields.action` names.
pub(crate) fn parse(fields: &Fields<'_>) -> Result<Command, Rejection> {
    match fields.action {
        "sendmessage" => send_message::parse(fields),
        "ping" => Ok(Command::Ping),
        "whoami" => Ok(Command::Whoami),
        "join" => join::parse(fields),
        "leave" => leave::parse(fields),
        "send" => send::parse(fields),
        "presence" => presence::parse(fields),
        "history" => history::parse(fields),
        other => Err(Rejection::new(
            ErrorCode::UnknownAction,
            format!(
                "unknown action {other:?}; known actions are {}",
                ACTIONS.join(", ")
            ),
            Some(other),
        )),
    }
}

/// Whether the connection may carry out `command`: the `forbidden` rejection when not.
pub fn check(permissions: &Permissions, command: &Command) -> Result<(), Rejection> {
    let refused = match command {
        Command::Join { group, .. } => join::refused(permissions, group),
        Command::History { group, .. } => history::refused(permissions, group),
        Command::Presence { group } => presence::refused(permissions, group.as_deref()),
        Command::SendMessage { .. } => send_message::refused(permissions),
        Command::Send(send) => send::refused(permissions, send),
        Command::Ping | Command::Whoami | Command::Leave { .. } => None,
    };
    match refused {
        None => Ok(()),
        Some(what) => Err(Rejection::new(
            ErrorCode::Forbidden,
            format!(
                "your token does not allow you to {what}; ask for a token whose claims grant it"
            ),
            Some(command.action()),
        )),
    }
}

/// Carries out `command`; returns the frames for the sender.
pub(crate) async fn run(sender: &Client<'_>, command: Command) -> Result<Vec<String>, Error> {
    match command {
        Command::Ping => Ok(ping::run()),
        Command::SendMessage { text } => send_message::run(sender, &text).await,
        Command::Whoami => whoami::run(sender).await,
        Command::Join { group, presence } => join::run(sender, &group, presence).await,
        Command::Leave { group } => leave::run(sender, &group).await,
        Command::History { group, since } => history::run(sender, &group, since.as_ref()).await,
        Command::Presence { group } => presence::run(sender, group.as_deref()).await,
        Command::Send(send) => send::run(sender, send).await,
    }
}

/// Helpers the commands' tests share.
#[cfg(test)]
pub(crate) mod testing {
    use shared::prelude::Rejection;

    use super::Command;
    use crate::{parse, Incoming};

    /// The command `body` parses to; panics when it is not one.
    pub(crate) fn command(body: &str) -> Command {
        match parse(body) {
            Ok(Incoming::Command(command)) => command,
            other => panic!("{body} parsed as {other:?}"),
        }
    }

    /// The rejection `body` parses to; panics when it parses.
    pub(crate) fn rejection(body: &str) -> Rejection {
        match parse(body) {
            Err(rejection) => rejection,
            other => panic!("{body} parsed as {other:?}"),
        }
    }
}

/// What each command needs of the token's claims.
#[cfg(test)]
mod tests {
    use super::testing::command;
    use super::*;

    fn granted(groups: &[&str], send: &[&str]) -> Permissions {
        Permissions::Granted {
            groups: groups.iter().map(|s| (*s).to_owned()).collect(),
            send: send.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn every_action_parses_to_the_command_it_names() {
        for action in ACTIONS {
            let body = serde_json::json!({
                "action": action, "group": "g", "data": "d", "to": {"all": true},
            });
            let parsed = command(&body.to_string());
            assert_eq!(parsed.action(), *action);
        }
    }

    #[test]
    fn a_group_pattern_allows_join_and_presence_of_the_groups_it_matches() {
        let p = granted(&["room-*", "lobby"], &[]);
        assert!(check(&p, &command(r#"{"action":"join","group":"room-1"}"#)).is_ok());
        assert!(check(&p, &command(r#"{"action":"presence","group":"lobby"}"#)).is_ok());
        let refused = check(&p, &command(r#"{"action":"join","group":"admin"}"#)).unwrap_err();
        assert_eq!(refused.code, ErrorCode::Forbidden);
        assert_eq!(refused.action.as_deref(), Some("join"));
        assert!(check(&p, &command(r#"{"action":"join","group":"lobby2"}"#)).is_err());
    }

    #[test]
    fn send_patterns_name_the_kind_of_target() {
        let p = granted(&[], &["group:room-*", "uid:*", "connection"]);
        let ok = |frame: &str| check(&p, &command(frame)).is_ok();
        assert!(ok(r#"{"action":"send","to":{"group":"room-2"},"data":1}"#));
        assert!(ok(r#"{"action":"send","to":{"uids":["a","b"]},"data":1}"#));
        assert!(ok(
            r#"{"action":"send","to":{"connectionId":"x="},"data":1}"#
        ));
        assert!(
            !ok(r#"{"action":"send","to":{"groups":["room-1","staff"]},"data":1}"#),
            "refused whole"
        );
        assert!(!ok(r#"{"action":"send","to":{"all":true},"data":1}"#));
        assert!(!ok(r#"{"action":"sendmessage","data":"hi"}"#));
        assert!(!ok(r#"{"action":"presence"}"#));
    }

    #[test]
    fn a_star_matches_any_name_of_its_kind_and_no_other_kind() {
        let p = granted(&["*"], &["group:*"]);
        let ok = |frame: &str| check(&p, &command(frame)).is_ok();
        assert!(ok(r#"{"action":"join","group":"a:b"}"#));
        assert!(ok(
            r#"{"action":"send","to":{"groups":["x","y:z"]},"data":1}"#
        ));
        assert!(
            !ok(r#"{"action":"send","to":{"uid":"x"},"data":1}"#),
            "a group pattern is not a uid pattern"
        );
        assert!(!ok(
            r#"{"action":"send","to":{"connectionIds":["a=","b="]},"data":1}"#
        ));
        let kindless = granted(&[], &["*"]);
        assert!(check(
            &kindless,
            &command(r#"{"action":"send","to":{"uid":"x"},"data":1}"#)
        )
        .is_err());
    }

    #[test]
    fn one_name_not_allowed_refuses_a_list_whole_and_exclude_needs_nothing() {
        let p = granted(&[], &["uid:team-*"]);
        let ok = |frame: &str| check(&p, &command(frame)).is_ok();
        assert!(!ok(
            r#"{"action":"send","to":{"uids":["team-a","boss"]},"data":1}"#
        ));
        assert!(ok(
            r#"{"action":"send","to":{"uids":["team-a"]},"exclude":["z="],"data":1}"#
        ));
    }

    #[test]
    fn group_presence_needs_the_groups_claim_not_send() {
        let p = granted(&[], &["group:*", "all"]);
        assert!(check(&p, &command(r#"{"action":"presence","group":"g"}"#)).is_err());
    }

    #[test]
    fn all_allows_broadcasts_and_the_presence_of_everyone() {
        let p = granted(&[], &["all"]);
        assert!(check(&p, &command(r#"{"action":"sendmessage","data":"hi"}"#)).is_ok());
        assert!(check(
            &p,
            &command(r#"{"action":"send","to":{"all":true},"data":1}"#)
        )
        .is_ok());
        assert!(check(&p, &command(r#"{"action":"presence"}"#)).is_ok());
    }

    #[test]
    fn a_token_without_claims_may_still_ping_whoami_and_leave() {
        let p = granted(&[], &[]);
        for frame in [
            r#"{"action":"ping"}"#,
            r#"{"action":"whoami"}"#,
            r#"{"action":"leave","group":"x"}"#,
        ] {
            assert!(check(&p, &command(frame)).is_ok(), "{frame}");
        }
        assert!(check(&p, &command(r#"{"action":"join","group":"x"}"#)).is_err());
    }

    #[test]
    fn without_a_secret_everything_is_allowed() {
        let p = Permissions::of(false, |_| None);
        assert_eq!(p, Permissions::Everything);
        assert!(check(&p, &command(r#"{"action":"sendmessage","data":"hi"}"#)).is_ok());
    }
}
