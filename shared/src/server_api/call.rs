//! One call of the server API: what it names, how it is checked, and what it answers — the
//! answers `gateway-client` prints.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::error::Error;
use crate::gateway::target::Target;
use crate::gateway::Gateway;
use crate::names::{is_valid_connection_id, is_valid_name};
use crate::push::Push;
use crate::store::Store;

/// Who a `send` is for: exactly one of these keys.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum To {
    /// One connection.
    Client(String),
    /// Several connections.
    Clients(Vec<String>),
    /// Every connection of a uid.
    Uid(String),
    /// Every connection of several uids.
    Uids(Vec<String>),
    /// Every member of a group.
    Group(String),
    /// Every member of several groups (each once).
    Groups(Vec<String>),
    /// Everyone (`true`).
    All(bool),
}

impl To {
    fn target(&self) -> Target {
        match self {
            To::Client(id) => Target::Connections(vec![id.clone()]),
            To::Clients(ids) => Target::Connections(ids.clone()),
            To::Uid(uid) => Target::Uids(vec![uid.clone()]),
            To::Uids(uids) => Target::Uids(uids.clone()),
            To::Group(group) => Target::Groups(vec![group.clone()]),
            To::Groups(groups) => Target::Groups(groups.clone()),
            To::All(_) => Target::All,
        }
    }
}

/// A Gateway call, as JSON: `{"call": "send", …}`.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(tag = "call", rename_all = "snake_case", deny_unknown_fields)]
pub enum Call {
    /// sendToClient / sendToUid / sendToGroup / sendToAll: `data` goes out as it is when it is a
    /// string, else as its compact JSON. Answers `{"delivered", "gone"}`, and `"queued"` for a send spread over the
    /// fan-out workers.
    Send {
        /// The recipients.
        to: To,
        /// The frame.
        data: Value,
        /// Connections that must not receive it.
        #[serde(default)]
        exclude: Vec<String>,
    },
    /// closeClient, or every connection of a uid. Answers `{"closed"}`.
    Kick {
        /// One connection…
        client: Option<String>,
        /// …or every connection of a uid.
        uid: Option<String>,
    },
    /// Connections and distinct uids, of a group or of everyone. Answers `{"connections",
    /// "uids"}` (and `"group"`).
    Presence {
        /// The group; everyone without.
        group: Option<String>,
    },
    /// isOnline / isUidOnline. Answers `{"online"}` (and, for a uid, `"connections"`).
    Online {
        /// One connection…
        client: Option<String>,
        /// …or a uid.
        uid: Option<String>,
    },
    /// getUidByClientId. Answers `{"uid"}` (`null`: it has none, or is gone).
    Uid {
        /// The connection.
        client: String,
    },
    /// getClientSessionsByGroup: each member's session by connection id. Answers `{"sessions"}`.
    Sessions {
        /// The group.
        group: String,
    },
    /// getClientIdListByGroup. Answers `{"connections"}`.
    Members {
        /// The group.
        group: String,
    },
    /// bindUid (to a connection that has none). Answers `{"bound"}`.
    Bind {
        /// The connection.
        client: String,
        /// The uid.
        uid: String,
    },
    /// unbindUid. Answers `{"unbound"}`.
    Unbind {
        /// The connection.
        client: String,
    },
    /// joinGroup. Answers `{"joined"}`.
    Join {
        /// The connection.
        client: String,
        /// The group.
        group: String,
    },
    /// leaveGroup. Answers `{"left": true}`.
    Leave {
        /// The connection.
        client: String,
        /// The group.
        group: String,
    },
    /// ungroup. Answers `{"removed"}`.
    Ungroup {
        /// The group.
        group: String,
    },
    /// getSession. Answers `{"session"}` (`null` when it has none or is gone).
    Session {
        /// The connection.
        client: String,
    },
    /// setSession: replaces the session. Answers `{"stored"}`.
    SetSession {
        /// The connection.
        client: String,
        /// The new session.
        session: Value,
    },
    /// updateSession: merges as PHP's `array_replace_recursive`. Answers `{"stored"}`.
    UpdateSession {
        /// The connection.
        client: String,
        /// What to merge in: a JSON object.
        session: Map<String, Value>,
    },
}

fn client(id: &str) -> Result<(), String> {
    if is_valid_connection_id(id) {
        Ok(())
    } else {
        Err(format!("{id:?} is not a connection id"))
    }
}

fn name(kind: &str, name: &str) -> Result<(), String> {
    if is_valid_name(name) {
        Ok(())
    } else {
        Err(format!(
            "{kind} {name:?} is not a valid name: use 1–128 characters of A-Z a-z 0-9 _ . : @ -"
        ))
    }
}

/// Exactly one of `client` and `uid`, each checked.
fn one_of(client_id: Option<&str>, uid: Option<&str>) -> Result<(), String> {
    match (client_id, uid) {
        (Some(id), None) => client(id),
        (None, Some(uid)) => name("uid", uid),
        _ => Err("give exactly one of \"client\" and \"uid\"".to_owned()),
    }
}

impl Call {
    /// The call's name, as requests write it.
    pub fn name(&self) -> &'static str {
        match self {
            Call::Send { .. } => "send",
            Call::Kick { .. } => "kick",
            Call::Presence { .. } => "presence",
            Call::Online { .. } => "online",
            Call::Members { .. } => "members",
            Call::Uid { .. } => "uid",
            Call::Sessions { .. } => "sessions",
            Call::Bind { .. } => "bind",
            Call::Unbind { .. } => "unbind",
            Call::Join { .. } => "join",
            Call::Leave { .. } => "leave",
            Call::Ungroup { .. } => "ungroup",
            Call::Session { .. } => "session",
            Call::SetSession { .. } => "set_session",
            Call::UpdateSession { .. } => "update_session",
        }
    }

    /// Whether every connection id, uid and group it names is one: checked before anything runs.
    pub fn check(&self) -> Result<(), String> {
        match self {
            Call::Send { to, exclude, .. } => {
                match to {
                    To::Client(id) => client(id)?,
                    To::Uid(uid) => name("uid", uid)?,
                    To::Group(group) => name("group", group)?,
                    To::All(true) => {}
                    To::All(false) => return Err("\"all\" must be true".to_owned()),
                    To::Clients(ids) | To::Uids(ids) | To::Groups(ids)
                        if ids.is_empty() || ids.len() > 100 =>
                    {
                        return Err("a list target holds 1 to 100 names".to_owned())
                    }
                    To::Clients(ids) => ids.iter().try_for_each(|id| client(id))?,
                    To::Uids(uids) => uids.iter().try_for_each(|uid| name("uid", uid))?,
                    To::Groups(groups) => groups.iter().try_for_each(|g| name("group", g))?,
                }
                exclude.iter().try_for_each(|id| client(id))
            }
            Call::Kick { client, uid } | Call::Online { client, uid } => {
                one_of(client.as_deref(), uid.as_deref())
            }
            Call::Presence { group } => group.as_deref().map_or(Ok(()), |g| name("group", g)),
            Call::Members { group } | Call::Ungroup { group } | Call::Sessions { group } => {
                name("group", group)
            }
            Call::Bind { client: id, uid } => client(id).and_then(|()| name("uid", uid)),
            Call::Join { client: id, group } | Call::Leave { client: id, group } => {
                client(id).and_then(|()| name("group", group))
            }
            Call::Unbind { client: id }
            | Call::Uid { client: id }
            | Call::Session { client: id }
            | Call::SetSession { client: id, .. }
            | Call::UpdateSession { client: id, .. } => client(id),
        }
    }

    /// Carries the call out through the Gateway (pushes to its `MANAGEMENT_ENDPOINT`).
    pub async fn run<S: Store, P: Push>(self, gateway: &Gateway<S, P>) -> Result<Value, Error> {
        Ok(match self {
            Call::Send { to, data, exclude } => {
                let text = match data {
                    Value::String(text) => text,
                    other => other.to_string(),
                };
                let report = gateway.send_to(&to.target(), text, &exclude).await?;
                if let Some(error) = report.error() {
                    return Err(error);
                }
                let mut answer = json!({"delivered": report.delivered, "gone": report.gone});
                if report.queued > 0 {
                    answer["queued"] = json!(report.queued);
                }
                answer
            }
            Call::Kick {
                client: Some(id), ..
            } => {
                gateway.close_client(&id).await?;
                json!({"closed": 1})
            }
            Call::Kick { uid, .. } => {
                json!({"closed": gateway.kick_uid(uid.as_deref().unwrap_or_default()).await?})
            }
            Call::Presence { group } => {
                let presence = match &group {
                    Some(group) => gateway.group_presence(group).await?,
                    None => gateway.all_presence().await?,
                };
                let mut answer =
                    json!({"connections": presence.connections, "uids": presence.uids});
                if let Some(group) = group {
                    answer["group"] = json!(group);
                }
                answer
            }
            Call::Online {
                client: Some(id), ..
            } => json!({"online": gateway.is_online(&id).await?}),
            Call::Online { uid, .. } => {
                let uid = uid.unwrap_or_default();
                let connections = gateway.client_ids_by_uid(&uid).await?;
                json!({"online": !connections.is_empty(), "connections": connections})
            }
            Call::Members { group } => {
                json!({"connections": gateway.client_ids_by_group(&group).await?})
            }
            Call::Uid { client } => json!({"uid": gateway.uid_by_client_id(&client).await?}),
            Call::Sessions { group } => {
                json!({"sessions": gateway.client_sessions_by_group(&group).await?})
            }
            Call::Bind { client, uid } => json!({"bound": gateway.bind_uid(&client, &uid).await?}),
            Call::Unbind { client } => json!({"unbound": gateway.unbind_uid(&client).await?}),
            Call::Join { client, group } => {
                json!({"joined": gateway.join_group(&client, &group).await?})
            }
            Call::Leave { client, group } => {
                gateway.leave_group(&client, &group).await?;
                json!({"left": true})
            }
            Call::Ungroup { group } => json!({"removed": gateway.ungroup(&group).await?}),
            Call::Session { client } => json!({"session": gateway.session(&client).await?}),
            Call::SetSession { client, session } => {
                json!({"stored": gateway.set_session(&client, &session).await?})
            }
            Call::UpdateSession { client, session } => {
                json!({"stored": gateway.update_session(&client, &session).await?})
            }
        })
    }
}
