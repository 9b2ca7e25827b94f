use super::*;
use crate::aws::secrets_manager::fake::{refused, secret, Fake};
use serde_json::json;

const ONE: &str = "one-0123456789abcdefghijklmnopqrstuvwxyz";
const TWO: &str = "two-0123456789abcdefghijklmnopqrstuvwxyz";

fn rotated() -> String {
    json!({"kid": "2", "secret": TWO, "previous": [{"kid": "1", "secret": ONE}]}).to_string()
}

fn verifier() -> Verifier {
    Verifier::new(KeyRing::default(), "ws", Duration::from_secs(600))
}

/// A token whose header names `kid` (its claims and signature do not matter here).
fn token_naming(kid: &str, secret: &str) -> String {
    auth::mint(
        &Key::new(Some(kid), secret),
        "ws",
        "alice",
        Duration::from_secs(60),
        &[],
        &[],
    )
    .unwrap()
}

#[test]
fn the_generated_secret_is_one_current_key() {
    let keys = KeyRing::parse(&json!({"kid": "1", "secret": ONE}).to_string()).unwrap();
    assert_eq!(keys.current(), Some(&Key::new(Some("1"), ONE)));
    assert_eq!(keys.kids(), ["1"]);
}

#[test]
fn a_rotated_secret_signs_with_its_new_key_and_keeps_the_previous_one() {
    let keys = KeyRing::parse(&rotated()).unwrap();
    assert_eq!(keys.current().and_then(Key::kid), Some("2"));
    assert_eq!(keys.find("1").map(Key::secret), Some(ONE));
    assert_eq!(keys.kids(), ["2", "1"]);
}

#[test]
fn a_secret_that_is_not_a_json_object_is_refused() {
    assert_eq!(KeyRing::parse(ONE), Err(ShapeError::NotJson));
    assert_eq!(KeyRing::parse("[1]"), Err(ShapeError::NotAnObject));
}

#[test]
fn a_key_without_a_kid_or_a_secret_is_refused() {
    assert_eq!(
        KeyRing::parse(&json!({"secret": ONE}).to_string()),
        Err(ShapeError::Missing("kid".into()))
    );
    let previous = json!({"kid": "2", "secret": TWO, "previous": [{"kid": "1"}]});
    assert_eq!(
        KeyRing::parse(&previous.to_string()),
        Err(ShapeError::Missing("previous[0].secret".into()))
    );
}

#[test]
fn a_short_secret_is_refused() {
    let short = json!({"kid": "1", "secret": "too-short"});
    assert_eq!(
        KeyRing::parse(&short.to_string()),
        Err(ShapeError::TooShort("secret".into()))
    );
}

#[test]
fn a_kid_that_is_not_a_string_is_refused() {
    let numbered = json!({"kid": 1, "secret": ONE});
    assert_eq!(
        KeyRing::parse(&numbered.to_string()),
        Err(ShapeError::NotAString("kid".into()))
    );
}

#[test]
fn two_keys_with_one_kid_are_refused() {
    let twice = json!({"kid": "1", "secret": TWO, "previous": [{"kid": "1", "secret": ONE}]});
    assert_eq!(
        KeyRing::parse(&twice.to_string()),
        Err(ShapeError::DuplicateKid("1".into()))
    );
}

#[test]
fn a_misspelt_field_is_refused_rather_than_dropping_keys() {
    let misspelt = json!({"kid": "2", "secret": TWO, "previus": [{"kid": "1", "secret": ONE}]});
    assert_eq!(
        KeyRing::parse(&misspelt.to_string()),
        Err(ShapeError::UnknownField("\"previus\"".into()))
    );
}

#[test]
fn previous_keys_must_be_a_list_of_keys() {
    let one = json!({"kid": "2", "secret": TWO, "previous": {"kid": "1", "secret": ONE}});
    assert_eq!(
        KeyRing::parse(&one.to_string()),
        Err(ShapeError::PreviousNotAList)
    );
    let strings = json!({"kid": "2", "secret": TWO, "previous": [ONE]});
    assert_eq!(
        KeyRing::parse(&strings.to_string()),
        Err(ShapeError::NotAKey("previous[0]".into()))
    );
}

#[test]
fn no_shape_error_repeats_a_secret() {
    for bad in [
        json!({"kid": "1", "secret": ONE, "previous": ONE}),
        json!({"kid": "1", "secret": ONE, "previous": [ONE]}),
        json!({"kid": ONE, "secret": 7}),
        json!({"kid": "1", "secret": ONE, "previous": [{"kid": "1", "secret": ONE}]}),
    ] {
        let problem = KeyRing::parse(&bad.to_string()).unwrap_err();
        let text = KeysError::Shape {
            secret: "arn".into(),
            problem,
        }
        .to_string();
        assert!(!text.contains(&ONE[..20]), "{text}");
    }
}

#[test]
fn a_keys_debug_output_hides_its_secret() {
    let text = format!("{:?}", KeyRing::parse(&rotated()).unwrap());
    assert!(
        !text.contains(&ONE[..20]) && !text.contains(&TWO[..20]),
        "{text}"
    );
    assert!(text.contains("\"2\""), "{text}");
}

#[test]
fn text_given_to_a_minting_tool_may_be_the_secrets_json_or_a_bare_secret() {
    assert_eq!(
        KeyRing::from_text(&rotated()).unwrap().current(),
        Some(&Key::new(Some("2"), TWO))
    );
    assert_eq!(
        KeyRing::from_text("local").unwrap().current(),
        Some(&Key::new(None, "local"))
    );
}

#[tokio::test]
async fn the_keys_are_read_into_the_verifier_at_init() {
    let fake = Fake::start(vec![secret(&rotated())]).await;
    let keys = TokenKeys::new(fake.client(), "keys");
    let verifier = verifier();
    assert_eq!(keys.load(&verifier).await.unwrap(), ["2", "1"]);
    assert!(verifier.knows("1") && verifier.knows("2"));
}

#[tokio::test]
async fn a_secret_of_the_wrong_shape_stops_the_init_naming_the_secret() {
    let fake = Fake::start(vec![secret(r#"{"kid":"1"}"#)]).await;
    let keys = TokenKeys::new(fake.client(), "the-keys");
    let err = keys.load(&verifier()).await.unwrap_err();
    assert!(matches!(err, KeysError::Shape { .. }), "{err:?}");
    assert!(err.to_string().contains("the-keys"), "{err}");
}

#[tokio::test]
async fn a_refused_read_stops_the_init_with_the_reason() {
    let fake = Fake::start(vec![refused(400, "AccessDeniedException")]).await;
    let keys = TokenKeys::new(fake.client(), "the-keys");
    let err = keys.load(&verifier()).await.unwrap_err();
    assert!(
        matches!(err, KeysError::Read(SecretError::AccessDenied { .. })),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_token_naming_a_key_not_read_has_the_secret_read_again() {
    let fake = Fake::start(vec![secret(
        &json!({"kid": "1", "secret": ONE}).to_string(),
    )])
    .await;
    let keys = TokenKeys::new(fake.client(), "keys");
    let verifier = verifier();
    keys.load(&verifier).await.unwrap();
    // Rotated right after the init: the init's read does not hold the next one back.
    fake.answer_with(vec![secret(&rotated())]);
    assert!(keys.refresh_for(&verifier, &token_naming("2", TWO)).await);
    assert!(verifier.knows("2") && verifier.knows("1"));
    assert_eq!(fake.asked().len(), 2);
}

#[tokio::test]
async fn a_token_naming_a_known_key_or_none_reads_nothing() {
    let fake = Fake::start(vec![secret(&rotated())]).await;
    let keys = TokenKeys::new(fake.client(), "keys");
    let verifier = verifier();
    keys.load(&verifier).await.unwrap();
    assert!(!keys.refresh_for(&verifier, &token_naming("1", ONE)).await);
    assert!(!keys.refresh_for(&verifier, "not.a.token").await);
    assert_eq!(fake.asked().len(), 1);
}

#[tokio::test]
async fn unknown_kids_read_the_secret_again_at_most_once_per_interval() {
    let fake = Fake::start(vec![secret(&rotated())]).await;
    let keys = TokenKeys::new(fake.client(), "keys");
    let verifier = verifier();
    keys.load(&verifier).await.unwrap();
    assert!(keys.refresh_for(&verifier, &token_naming("9", ONE)).await);
    assert!(!keys.refresh_for(&verifier, &token_naming("8", ONE)).await);
    assert_eq!(fake.asked().len(), 2, "the init's read and one more");
}
