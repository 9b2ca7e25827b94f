//! The rules for the names clients use: uids, groups and connection ids.
//!
//! Names become parts of DynamoDB keys and of `@connections/{id}` URLs, so they are checked once,
//! where they enter, and carried as plain strings after that.

/// The longest uid or group name, in characters.
pub const MAX_NAME_CHARS: usize = 128;

/// Whether `name` is a valid uid or group name: 1–128 characters of `A-Z a-z 0-9 _ . : @ -`.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_CHARS
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'@' | b'-'))
}

/// Whether `id` could be an API Gateway connection id (base64 characters, 1–128 of them).
///
/// API Gateway's ids look like `Gm1tsdBmoAMCIxw=`; the local gateway makes ids of the same shape.
pub fn is_valid_connection_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_NAME_CHARS
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b'+' | b'/' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_take_letters_digits_and_the_five_marks() {
        assert!(is_valid_name("room-1"));
        assert!(is_valid_name("a.b:c@d_e-F9"));
        assert!(is_valid_name(&"x".repeat(128)));
    }

    #[test]
    fn names_refuse_empty_long_spaced_and_non_ascii() {
        assert!(!is_valid_name(""));
        assert!(!is_valid_name(&"x".repeat(129)));
        assert!(!is_valid_name("room 1"));
        assert!(!is_valid_name("room#1"));
        assert!(!is_valid_name("zimmer-ä"));
        assert!(!is_valid_name("a/b"));
    }

    #[test]
    fn connection_ids_look_like_api_gateways() {
        assert!(is_valid_connection_id("Gm1tsdBmoAMCIxw="));
        assert!(is_valid_connection_id("a+b/c="));
        assert!(!is_valid_connection_id(""));
        assert!(!is_valid_connection_id("has space"));
    }
}
