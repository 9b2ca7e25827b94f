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

use crate::gateway::target::Target;

/// The context keys that carry the claims.
pub const GROUPS: &str = "groups";
/// The context key that carries the `send` claim.
pub const SEND: &str = "send";

/// What a connection may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Permissions {
    /// No signing secret: local development, everything allowed.
    Everything,
    /// Token mode: what the token's claims grant.
    Granted {
        /// Patterns of the groups it may join (and so receive) and see the presence of.
        groups: Vec<String>,
        /// Patterns of the targets it may send to: `group:…`, `uid:…`, `connection`, `all`.
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

    /// Whether the connection may join `group` (and so receive its messages), follow its
    /// presence and read its history: the `groups` claim.
    pub fn may_join(&self, group: &str) -> bool {
        match self {
            Permissions::Everything => true,
            Permissions::Granted { groups, .. } => groups.iter().any(|p| matches(p, group)),
        }
    }

    /// Whether the `send` claim names a target of `kind` (`group`, `uid`) matching `name`, or,
    /// without a name, the kind itself (`connection`, `all`).
    fn may_send(&self, kind: &str, name: Option<&str>) -> bool {
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

    /// Whether the connection may send to every name `target` holds (one refused refuses all).
    pub fn may_send_to(&self, target: &Target) -> bool {
        match target {
            Target::Connections(_) => self.may_send("connection", None),
            Target::Uids(uids) => uids.iter().all(|u| self.may_send("uid", Some(u))),
            Target::Groups(groups) => groups.iter().all(|g| self.may_send("group", Some(g))),
            Target::All => self.may_send("all", None),
        }
    }

    /// Whether the connection may reach everyone: broadcast, and see everyone's presence (the
    /// `all` claim).
    pub fn may_reach_everyone(&self) -> bool {
        self.may_send("all", None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn granted(groups: &[&str], send: &[&str]) -> Permissions {
        Permissions::Granted {
            groups: groups.iter().map(|s| (*s).to_owned()).collect(),
            send: send.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    fn names(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn a_group_pattern_is_a_name_or_a_prefix_and_a_star() {
        let p = granted(&["room-*", "lobby"], &[]);
        assert!(p.may_join("room-1") && p.may_join("lobby"));
        assert!(!p.may_join("admin") && !p.may_join("lobby2"));
    }

    #[test]
    fn send_patterns_name_the_kind_of_target_and_a_list_is_refused_whole() {
        let p = granted(&[], &["group:room-*", "uid:*", "connection"]);
        assert!(p.may_send_to(&Target::Groups(names(&["room-2"]))));
        assert!(p.may_send_to(&Target::Uids(names(&["a", "b"]))));
        assert!(p.may_send_to(&Target::Connections(names(&["x="]))));
        assert!(!p.may_send_to(&Target::Groups(names(&["room-1", "staff"]))));
        assert!(!p.may_send_to(&Target::All) && !p.may_reach_everyone());
        let kindless = granted(&[], &["*"]);
        assert!(!kindless.may_send_to(&Target::Uids(names(&["x"]))));
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
