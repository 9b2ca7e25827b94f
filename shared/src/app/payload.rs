//! What a send takes: text as it is, or a JSON value.
//!
//! Every send of the [`crate::Gateway`] facade and of the hook contexts takes `impl Payload`, so
//! an application hands over a `&str`, a `String`, a `serde_json::Value` (`json!({…})`) or any
//! `Serialize` value wrapped in [`Json`], and never writes `.to_string()` on the way.

use serde::Serialize;

use crate::error::Error;

/// A frame to push, as the text that goes on the wire.
pub trait Payload {
    /// The frame's text; fails only for a [`Json`] value that cannot be serialized (a map with
    /// non-string keys, a failing `Serialize` impl).
    fn into_text(self) -> Result<String, Error>;
}

/// Any `Serialize` value, pushed as its JSON text.
#[derive(Clone, Copy, Debug)]
pub struct Json<T>(pub T);

impl<T: Serialize> Payload for Json<T> {
    fn into_text(self) -> Result<String, Error> {
        serde_json::to_string(&self.0).map_err(|e| Error::Unserializable(e.to_string()))
    }
}

impl Payload for &str {
    fn into_text(self) -> Result<String, Error> {
        Ok(self.to_owned())
    }
}

impl Payload for String {
    fn into_text(self) -> Result<String, Error> {
        Ok(self)
    }
}

impl Payload for &String {
    fn into_text(self) -> Result<String, Error> {
        Ok(self.clone())
    }
}

impl Payload for serde_json::Value {
    fn into_text(self) -> Result<String, Error> {
        Ok(self.to_string())
    }
}

impl Payload for &serde_json::Value {
    fn into_text(self) -> Result<String, Error> {
        Ok(self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_goes_out_as_it_is() {
        assert_eq!("héllo".into_text().unwrap(), "héllo");
        assert_eq!(String::from("{not json").into_text().unwrap(), "{not json");
    }

    #[test]
    fn values_go_out_as_their_json() {
        assert_eq!(
            json!({"type": "say"}).into_text().unwrap(),
            r#"{"type":"say"}"#
        );
        #[derive(Serialize)]
        struct Hello<'a> {
            to: &'a str,
        }
        assert_eq!(
            Json(Hello { to: "a" }).into_text().unwrap(),
            r#"{"to":"a"}"#
        );
        assert_eq!(Json("quoted").into_text().unwrap(), r#""quoted""#);
    }

    #[test]
    fn a_value_that_cannot_be_json_is_an_error_not_a_frame() {
        let keys_not_strings =
            std::collections::BTreeMap::from([((1, 2), "pair keys have no JSON form")]);
        assert!(matches!(
            Json(keys_not_strings).into_text(),
            Err(Error::Unserializable(_))
        ));
    }
}
