//! What a connection may do, from its token's claims (protocol: "Authorization").
//!
//! `groups` lists the groups it may join (and so receive) and see the presence of; `send` the
//! targets it may send to: `group:PATTERN`, `uid:PATTERN`, `connection` (any connection id), `all`
//! (`to: {"all": true}`, `sendmessage`, and the presence of everyone). A pattern is a name, or a
//! prefix and `*`. Without a signing secret everything is allowed.
//!
//! The `$connect` authorizer puts the claims in its context, as JSON text (API Gateway's context
//! holds strings only), so every frame knows them without a read. In token mode (`AUTH_SECRET`, or
//! `TOKEN_MODE=true` for the message function, which holds no secret) an event without them, or
//! with claims that do not parse, is allowed nothing the claims would grant. A `send` pattern
//! without a kind (`"*"`) grants nothing.

use serde_json::{Map, Value};

use crate::protocol::{Command, ErrorCode, Rejection, Target};

/// The context keys that carry the claims.
pub const GROUPS: &str = "groups";
pub const SEND: &str = "send";

/// What a connection may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Permissions {
    /// No signing secret: local development, everything allowed.
    Everything,
    /// Token mode: what the token's claims grant.
    Granted {
        groups: Vec<String>,
        send: Vec<String>,
    },
}

/// Whether `name` matches `pattern`: equal to it, or, for `prefix*`, starting with the prefix.
fn matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

impl Permissions {
    /// The permissions an event carries: `Everything` without a secret, else the claims the
    /// authorizer put in `authorizer` (none when it did not run).
    pub fn of<'a>(token_mode: bool, authorizer: impl Fn(&str) -> Option<&'a Value>) -> Permissions {
        if !token_mode {
            return Permissions::Everything;
        }
        let list = |key: &str| -> Vec<String> {
            authorizer(key)
                .and_then(Value::as_str)
                .and_then(|text| serde_json::from_str(text).ok())
                .unwrap_or_default()
        };
        Permissions::Granted {
            groups: list(GROUPS),
            send: list(SEND),
        }
    }

    /// The authorizer's context entries for these permissions (none for `Everything`).
    pub fn context(&self) -> Map<String, Value> {
        match self {
            Permissions::Everything => Map::new(),
            Permissions::Granted { groups, send } => Map::from_iter([
                (
                    GROUPS.to_owned(),
                    Value::String(Value::from(groups.clone()).to_string()),
                ),
                (
                    SEND.to_owned(),
                    Value::String(Value::from(send.clone()).to_string()),
                ),
            ]),
        }
    }

    fn group(&self, group: &str) -> bool {
        match self {
            Permissions::Everything => true,
            Permissions::Granted { groups, .. } => groups.iter().any(|p| matches(p, group)),
        }
    }

    fn target(&self, kind: &str, name: Option<&str>) -> bool {
        let Permissions::Granted { send, .. } = self else {
            return true;
        };
        send.iter()
            .any(|pattern| match (pattern.split_once(':'), name) {
                (Some((k, p)), Some(name)) => k == kind && matches(p, name),
                (None, None) => pattern == kind,
                _ => false,
            })
    }

    fn send_to(&self, target: &Target) -> bool {
        match target {
            Target::Connections(_) => self.target("connection", None),
            Target::Uids(uids) => uids.iter().all(|u| self.target("uid", Some(u))),
            Target::Groups(groups) => groups.iter().all(|g| self.target("group", Some(g))),
            Target::All => self.target("all", None),
        }
    }

    /// Whether the connection may carry out `command`: the `forbidden` rejection when not.
    pub fn check(&self, command: &Command) -> Result<(), Rejection> {
        let (allowed, what) = match command {
            Command::Join { group, .. } => (self.group(group), format!("join group {group:?}")),
            Command::History { group, .. } => (
                self.group(group),
                format!("read the history of group {group:?}"),
            ),
            Command::Presence { group: Some(group) } => (
                self.group(group),
                format!("see the presence of group {group:?}"),
            ),
            Command::Presence { group: None } => (
                self.target("all", None),
                "see the presence of everyone".to_owned(),
            ),
            Command::SendMessage { .. } => {
                (self.target("all", None), "send to everyone".to_owned())
            }
            Command::Send(send) => (
                self.send_to(&send.target),
                "send to every target named".to_owned(),
            ),
            Command::Ping | Command::Whoami | Command::Leave { .. } => (true, String::new()),
        };
        if allowed {
            return Ok(());
        }
        Err(Rejection::new(
            ErrorCode::Forbidden,
            format!(
                "your token does not allow you to {what}; ask for a token whose claims grant it"
            ),
            Some(command.action()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{parse, Incoming};
    use serde_json::json;

    fn command(frame: &str) -> Command {
        match parse(frame) {
            Ok(Incoming::Command(command)) => command,
            other => panic!("{frame}: {other:?}"),
        }
    }

    fn granted(groups: &[&str], send: &[&str]) -> Permissions {
        Permissions::Granted {
            groups: groups.iter().map(|s| (*s).to_owned()).collect(),
            send: send.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn a_group_pattern_allows_join_and_presence_of_the_groups_it_matches() {
        let p = granted(&["room-*", "lobby"], &[]);
        assert!(p
            .check(&command(r#"{"action":"join","group":"room-1"}"#))
            .is_ok());
        assert!(p
            .check(&command(r#"{"action":"presence","group":"lobby"}"#))
            .is_ok());
        let refused = p
            .check(&command(r#"{"action":"join","group":"admin"}"#))
            .unwrap_err();
        assert_eq!(refused.code, ErrorCode::Forbidden);
        assert_eq!(refused.action.as_deref(), Some("join"));
        assert!(p
            .check(&command(r#"{"action":"join","group":"lobby2"}"#))
            .is_err());
    }

    #[test]
    fn send_patterns_name_the_kind_of_target() {
        let p = granted(&[], &["group:room-*", "uid:*", "connection"]);
        let ok = |frame: &str| p.check(&command(frame)).is_ok();
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
        let ok = |frame: &str| p.check(&command(frame)).is_ok();
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
        assert!(kindless
            .check(&command(r#"{"action":"send","to":{"uid":"x"},"data":1}"#))
            .is_err());
    }

    #[test]
    fn one_name_not_allowed_refuses_a_list_whole_and_exclude_needs_nothing() {
        let p = granted(&[], &["uid:team-*"]);
        let ok = |frame: &str| p.check(&command(frame)).is_ok();
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
        assert!(p
            .check(&command(r#"{"action":"presence","group":"g"}"#))
            .is_err());
    }

    #[test]
    fn claims_that_do_not_parse_grant_nothing() {
        for bad in [
            json!(7),
            json!("not json"),
            json!("{\"a\":1}"),
            json!("[1]"),
        ] {
            let p = Permissions::of(true, |_| Some(&bad));
            assert_eq!(p, granted(&[], &[]), "{bad}");
        }
    }

    #[test]
    fn all_allows_broadcasts_and_the_presence_of_everyone() {
        let p = granted(&[], &["all"]);
        assert!(p
            .check(&command(r#"{"action":"sendmessage","data":"hi"}"#))
            .is_ok());
        assert!(p
            .check(&command(r#"{"action":"send","to":{"all":true},"data":1}"#))
            .is_ok());
        assert!(p.check(&command(r#"{"action":"presence"}"#)).is_ok());
    }

    #[test]
    fn a_token_without_claims_may_still_ping_whoami_and_leave() {
        let p = granted(&[], &[]);
        for frame in [
            r#"{"action":"ping"}"#,
            r#"{"action":"whoami"}"#,
            r#"{"action":"leave","group":"x"}"#,
        ] {
            assert!(p.check(&command(frame)).is_ok(), "{frame}");
        }
        assert!(p
            .check(&command(r#"{"action":"join","group":"x"}"#))
            .is_err());
    }

    #[test]
    fn without_a_secret_everything_is_allowed() {
        let p = Permissions::of(false, |_| None);
        assert_eq!(p, Permissions::Everything);
        assert!(p
            .check(&command(r#"{"action":"sendmessage","data":"hi"}"#))
            .is_ok());
    }

    #[test]
    fn the_claims_travel_through_the_authorizers_context_as_text() {
        let p = granted(&["room-*"], &["all"]);
        let context = p.context();
        assert!(context.values().all(Value::is_string));
        assert_eq!(Permissions::of(true, |k| context.get(k)), p);
        assert_eq!(
            Permissions::of(true, |_| None),
            granted(&[], &[]),
            "in token mode, no context grants nothing"
        );
    }
}
