//! Reading a command's fields: the checks every command's parser shares (names, connection ids,
//! lists, flags), each refusing with a `bad_request` that names the action and the field.

use std::collections::BTreeMap;

use serde_json::value::RawValue;
use shared::names::{is_valid_connection_id, is_valid_name};
use shared::prelude::{ErrorCode, Rejection};

/// The most names a list target or an `exclude` may hold.
pub const MAX_LIST_NAMES: usize = 100;

/// A `bad_request` for `action`.
pub(crate) fn bad(action: &str, message: impl Into<String>) -> Rejection {
    Rejection::new(ErrorCode::BadRequest, message, Some(action))
}

/// A command's fields, and the action that named it.
pub(crate) struct Fields<'a> {
    pub(crate) action: &'a str,
    pub(crate) map: &'a BTreeMap<String, Box<RawValue>>,
}

impl Fields<'_> {
    pub(crate) fn required(&self, key: &str, what: &str) -> Result<&RawValue, Rejection> {
        self.map.get(key).map(|raw| raw.as_ref()).ok_or_else(|| {
            bad(
                self.action,
                format!("{} needs {key:?}: {what}", self.action),
            )
        })
    }

    /// An optional `true`/`false`, false when absent.
    pub(crate) fn flag(&self, key: &str) -> Result<bool, Rejection> {
        match self.map.get(key) {
            None => Ok(false),
            Some(raw) => serde_json::from_str::<bool>(raw.get())
                .map_err(|_| bad(self.action, format!("{key} must be true or false"))),
        }
    }

    /// A required uid or group name, checked against the naming rules.
    pub(crate) fn name(&self, key: &str) -> Result<String, Rejection> {
        let raw = self.required(key, "a name of 1–128 characters of A-Z a-z 0-9 _ . : @ -")?;
        checked_name(self.action, key, raw)
    }
}

pub(crate) fn checked_name(action: &str, key: &str, raw: &RawValue) -> Result<String, Rejection> {
    match as_string(raw) {
        Some(name) if is_valid_name(&name) => Ok(name),
        Some(name) => Err(bad(
            action,
            format!(
                "{key} {name:?} is not a valid name: use 1–128 characters of A-Z a-z 0-9 _ . : @ -"
            ),
        )),
        None => Err(bad(action, format!("{key} must be a string"))),
    }
}

pub(crate) fn checked_connection_id(
    action: &str,
    key: &str,
    raw: &RawValue,
) -> Result<String, Rejection> {
    match as_string(raw) {
        Some(id) if is_valid_connection_id(&id) => Ok(id),
        Some(id) => Err(bad(action, format!("{key} {id:?} is not a connection id"))),
        None => Err(bad(action, format!("{key} must be a string"))),
    }
}

/// A list of 1–100 names, each checked by `check`.
pub(crate) fn checked_list(
    action: &str,
    key: &str,
    raw: &RawValue,
    check: fn(&str, &str, &RawValue) -> Result<String, Rejection>,
    allow_empty: bool,
) -> Result<Vec<String>, Rejection> {
    let items: Vec<Box<RawValue>> = serde_json::from_str(raw.get())
        .map_err(|_| bad(action, format!("{key} must be a list of strings")))?;
    let min = usize::from(!allow_empty);
    if items.len() < min || items.len() > MAX_LIST_NAMES {
        return Err(bad(
            action,
            format!(
                "{key} must hold {min}–{MAX_LIST_NAMES} names, not {}",
                items.len()
            ),
        ));
    }
    items.iter().map(|item| check(action, key, item)).collect()
}

pub(crate) fn as_string(raw: &RawValue) -> Option<String> {
    serde_json::from_str::<String>(raw.get()).ok()
}

/// The compact JSON text of a raw value (the client may have sent it with spaces).
pub(crate) fn compact(raw: &RawValue) -> String {
    serde_json::from_str::<serde_json::Value>(raw.get())
        .map(|value| value.to_string())
        .unwrap_or_else(|_| raw.get().to_owned())
}
