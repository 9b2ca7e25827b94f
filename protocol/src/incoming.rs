//! Reading a client frame: plain text (echoed), or a JSON object whose `action` names a command.

use std::collections::BTreeMap;

use serde_json::value::RawValue;
use shared::prelude::Rejection;

use crate::commands::{self, Command};
use crate::fields::{as_string, Fields};

/// What a client frame asks for.
#[derive(Debug, PartialEq)]
pub enum Incoming {
    /// Not a JSON object with a string `action`: echoed back to the sender.
    Plain,
    /// A command, read and checked.
    Command(Command),
}

/// Reads one client frame. `body` is the frame's text as API Gateway passed it.
pub fn parse(body: &str) -> Result<Incoming, Rejection> {
    let Ok(fields) = serde_json::from_str::<BTreeMap<String, Box<RawValue>>>(body) else {
        return Ok(Incoming::Plain);
    };
    let Some(action) = fields.get("action").and_then(|raw| as_string(raw)) else {
        return Ok(Incoming::Plain);
    };
    let fields = Fields {
        action: &action,
        map: &fields,
    };
    commands::parse(&fields).map(Incoming::Command)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::testing::rejection;
    use crate::echo;
    use shared::prelude::ErrorCode;

    #[test]
    fn frames_that_are_not_commands_are_plain() {
        for body in [
            "hello",
            "",
            "42",
            "[1,2]",
            "{\"data\":1}",
            "{\"action\":7}",
            "{\"action\":null}",
            "{not json",
            "\"action\"",
        ] {
            assert_eq!(parse(body), Ok(Incoming::Plain), "{body}");
        }
    }

    #[test]
    fn echo_repeats_the_frame_byte_for_byte() {
        assert_eq!(echo("  {héllo} "), "Hello, you sent:   {héllo} ");
    }

    #[test]
    fn an_unknown_action_is_named_in_the_error() {
        let r = rejection(r#"{"action":"dance"}"#);
        assert_eq!(r.code, ErrorCode::UnknownAction);
        assert_eq!(r.action.as_deref(), Some("dance"));
        assert!(r.message.contains("dance"));
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use crate::commands::ACTIONS;
    use proptest::prelude::*;
    use shared::prelude::ErrorCode;

    proptest! {
        #[test]
        fn parsing_never_panics_and_non_objects_are_plain(body in any::<String>()) {
            let result = parse(&body);
            let is_object_with_string_action = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("action").map(|a| a.is_string()))
                .unwrap_or(false);
            if !is_object_with_string_action {
                prop_assert_eq!(result, Ok(Incoming::Plain));
            }
        }

        #[test]
        fn join_takes_exactly_the_valid_names(group in "\\PC{0,140}") {
            let body = serde_json::json!({"action": "join", "group": group}).to_string();
            match parse(&body) {
                Ok(Incoming::Command(Command::Join { group: parsed, .. })) => {
                    prop_assert!(shared::names::is_valid_name(&group));
                    prop_assert_eq!(parsed, group);
                }
                Err(rejection) => {
                    prop_assert!(!shared::names::is_valid_name(&group));
                    prop_assert_eq!(rejection.code, ErrorCode::BadRequest);
                    prop_assert_eq!(rejection.action.as_deref(), Some("join"));
                }
                other => prop_assert!(false, "{:?}", other),
            }
        }

        #[test]
        fn send_data_is_kept_byte_for_byte(data in "[ -~]{0,40}") {
            let data_json = serde_json::to_string(&data).unwrap();
            let body = format!(r#"{{"action":"send","to":{{"all":true}},"data":{data_json}}}"#);
            match parse(&body) {
                Ok(Incoming::Command(Command::Send(send))) => prop_assert_eq!(send.data.get(), data_json.as_str()),
                other => prop_assert!(false, "{:?}", other),
            }
        }

        #[test]
        fn an_unknown_action_is_named_back(action in "[a-z]{1,12}") {
            prop_assume!(!ACTIONS.contains(&action.as_str()));
            let body = serde_json::json!({"action": action}).to_string();
            let rejection = parse(&body).unwrap_err();
            prop_assert_eq!(rejection.code, ErrorCode::UnknownAction);
            prop_assert_eq!(rejection.action, Some(action));
        }
    }
}
