//! GatewayWorker's `$_SESSION`: a JSON object per connection, stored on its record.
//!
//! API Gateway runs two frames of one connection at once, so a session read at the start of a
//! frame and written whole at its end would lose whatever another frame wrote meanwhile. What a
//! frame saves is therefore its [`Change`]: the keys it set and the keys it removed, merged into
//! the session as it is by then ([`crate::Gateway::change_session`], a conditional write tried
//! again while others win). Two frames changing different keys both keep their change; two
//! changing the same key leave the value of the one that saved last.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

use crate::error::Error;
use crate::store::StoreError;

/// A connection's session: top-level keys and their values.
pub type Session = Map<String, Value>;

/// Reads a session as stored (JSON text, or nothing). A stored value that is not an object (a
/// backend's `setSession` may write any JSON) reads as an empty session.
pub fn parse(stored: Option<&str>) -> Result<Session, Error> {
    match stored.map(serde_json::from_str) {
        Some(Ok(Value::Object(session))) => Ok(session),
        Some(Err(e)) => Err(Error::Store(StoreError::Malformed(format!(
            "a session is not JSON: {e}"
        )))),
        _ => Ok(Session::new()),
    }
}

/// What a frame did to a session.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Change {
    /// Keys given a new value (or added).
    pub set: Map<String, Value>,
    /// Keys removed.
    pub removed: BTreeSet<String>,
    /// Whether `set` is merged into what is there (GatewayWorker's `updateSession`) rather than
    /// replacing each key's value (what a frame changed).
    pub merges: bool,
}

impl Change {
    /// The keys that differ between a session as loaded and as left.
    pub fn between(before: &Session, after: &Session) -> Change {
        Change {
            merges: false,
            set: after
                .iter()
                .filter(|(key, value)| before.get(*key) != Some(*value))
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect(),
            removed: before
                .keys()
                .filter(|key| !after.contains_key(*key))
                .cloned()
                .collect(),
        }
    }

    /// Merges these keys into the session as GatewayWorker's `updateSession` does (PHP's
    /// `array_replace_recursive`): an object into an object key by key, a list into a list
    /// index by index (elements past the new list's end stay), anything else replaced.
    pub fn merge(set: Map<String, Value>) -> Change {
        Change {
            set,
            removed: BTreeSet::new(),
            merges: true,
        }
    }

    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.removed.is_empty()
    }

    /// The change made to `session`.
    pub fn apply(&self, session: &mut Session) {
        for key in &self.removed {
            session.remove(key);
        }
        for (key, value) in &self.set {
            match session.get_mut(key) {
                Some(old) if self.merges => replace_recursive(old, value),
                _ => {
                    session.insert(key.clone(), value.clone());
                }
            }
        }
    }
}

/// PHP's `array_replace_recursive` on JSON: objects by key, lists by index, else replaced.
fn replace_recursive(old: &mut Value, new: &Value) {
    match (old, new) {
        (Value::Object(old), Value::Object(new)) => {
            for (key, value) in new {
                match old.get_mut(key) {
                    Some(slot) => replace_recursive(slot, value),
                    None => {
                        old.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (Value::Array(old), Value::Array(new)) => {
            for (i, value) in new.iter().enumerate() {
                match old.get_mut(i) {
                    Some(slot) => replace_recursive(slot, value),
                    None => old.push(value.clone()),
                }
            }
        }
        (old, new) => *old = new.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn session(value: Value) -> Session {
        value.as_object().cloned().expect("an object")
    }

    #[test]
    fn a_change_holds_only_the_keys_set_and_removed() {
        let before = session(json!({"room": "1", "name": "ann", "seen": 3}));
        let after = session(json!({"room": "2", "name": "ann", "color": "red"}));
        let change = Change::between(&before, &after);
        assert_eq!(
            change.set,
            session(json!({"room": "2", "color": "red"})),
            "unchanged keys are not written back"
        );
        assert_eq!(change.removed, BTreeSet::from(["seen".to_owned()]));
    }

    #[test]
    fn an_untouched_session_is_no_change() {
        let before = session(json!({"room": "1"}));
        assert!(Change::between(&before, &before.clone()).is_empty());
    }

    #[test]
    fn a_change_applied_to_a_session_changed_meanwhile_keeps_the_other_keys() {
        let change = Change::between(&session(json!({"a": 1, "b": 1})), &session(json!({"a": 2})));
        // Another frame set `c` meanwhile.
        let mut now = session(json!({"a": 1, "b": 1, "c": 1}));
        change.apply(&mut now);
        assert_eq!(now, session(json!({"a": 2, "c": 1})));
    }

    #[test]
    fn update_session_merges_as_php_array_replace_recursive_does() {
        let mut now = session(json!({
            "user": {"name": "a", "age": 1},
            "tags": ["a", "b", "c"],
            "n": 1,
        }));
        Change::merge(session(json!({
            "user": {"age": 2},
            "tags": ["x"],
            "n": {"now": "an object"},
            "new": true,
        })))
        .apply(&mut now);
        assert_eq!(
            now,
            session(json!({
                "user": {"name": "a", "age": 2},
                "tags": ["x", "b", "c"],
                "n": {"now": "an object"},
                "new": true,
            }))
        );
    }

    #[test]
    fn a_frames_change_replaces_what_it_set() {
        let mut now = session(json!({"user": {"name": "a", "age": 1}}));
        let change = Change::between(&now.clone(), &session(json!({"user": {"age": 2}})));
        change.apply(&mut now);
        assert_eq!(now, session(json!({"user": {"age": 2}})));
    }

    #[test]
    fn a_stored_value_that_is_not_an_object_reads_as_an_empty_session() {
        assert_eq!(parse(Some("[1,2]")).expect("parsed"), Session::new());
        assert_eq!(parse(None).expect("parsed"), Session::new());
        assert!(parse(Some("{")).is_err());
    }
}
