//! Frames a client could send, for property tests: anything at all, JSON of every shape, the
//! protocol's own commands with right and wrong fields, deep nesting, odd Unicode.

use proptest::prelude::*;
use serde_json::{json, Value};

/// The protocol's actions (its one list), and names that are not actions.
fn actions() -> Vec<&'static str> {
    let mut actions = protocol::ACTIONS.to_vec();
    actions.extend(["", "PING", "$default", "dance"]);
    actions
}
const KEYS: &[&str] = &[
    "data",
    "group",
    "to",
    "exclude",
    "excludeSelf",
    "id",
    "connectionId",
    "connectionIds",
    "uid",
    "uids",
    "groups",
    "all",
    "since",
    "presence",
];

/// Any JSON value, a few levels deep.
pub fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        name().prop_map(Value::from),
        any::<String>().prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(key(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Names that are valid, nearly valid, and not at all.
pub fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9_.:@-]{1,12}",
        "[A-Za-z0-9_.:@-]{127,130}",
        Just(String::new()),
        "[ #/ä\u{0}\u{fffd}😀]{1,4}",
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(KEYS).prop_map(str::to_owned),
        any::<String>()
    ]
}

/// A target object, well formed or not.
fn target() -> impl Strategy<Value = Value> {
    prop_oneof![
        name().prop_map(|n| json!({"uid": n})),
        prop::collection::vec(name(), 0..4).prop_map(|n| json!({"groups": n})),
        Just(json!({"all": true})),
        any::<bool>().prop_map(|b| json!({"all": b})),
        (name(), name()).prop_map(|(a, b)| json!({"uid": a, "group": b})),
        json_value(),
    ]
}

/// A command-shaped frame: an object with an action and a mix of the protocol's fields.
fn command() -> impl Strategy<Value = String> {
    (
        prop::sample::select(actions()),
        prop::option::of(json_value()),
        prop::option::of(name()),
        prop::option::of(target()),
        prop::collection::btree_map(key(), json_value(), 0..3),
    )
        .prop_map(|(action, data, group, to, extra)| {
            let mut frame: serde_json::Map<String, Value> = extra.into_iter().collect();
            frame.insert("action".into(), json!(action));
            if let Some(data) = data {
                frame.insert("data".into(), data);
            }
            if let Some(group) = group {
                frame.insert("group".into(), json!(group));
            }
            if let Some(to) = to {
                frame.insert("to".into(), to);
            }
            Value::Object(frame).to_string()
        })
}

/// Any frame a client could send.
pub fn frame() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => command(),
        2 => any::<String>(),
        1 => json_value().prop_map(|v| v.to_string()),
        1 => (1usize..400).prop_map(|d| format!(r#"{{"action":"send","to":{{"all":true}},"data":{}{}}}"#, "[".repeat(d), "]".repeat(d))),
        1 => (1usize..400).prop_map(|d| "{\"a\":".repeat(d) + &"}".repeat(d)),
        1 => Just(r#"{"action":"join","group":"\ud800"}"#.to_owned()),
        1 => Just(String::new()),
    ]
}
