//! Which function serves which route, read from the SAM template, so that the template is the one
//! source of truth for both AWS and local runs.
//!
//! The template wires `AWS::ApiGatewayV2::Route` → `Target: !Sub integrations/${Integration}` →
//! `IntegrationUri: !Sub ...${Function.Arn}...` → an `AWS::Serverless::Function`. Locally a function
//! is invoked by the last part of its `CodeUri` (the Cargo package, which is the name `cargo lambda
//! watch` serves it under) or, with `--function-names logical-id`, by its logical id (the name `sam
//! local start-lambda` uses).
//!
//! A route whose integration is a `MOCK` is answered by API Gateway itself: the gateway sends its
//! integration response's template back, invoking nothing. Only the shape the project's template
//! uses is understood (a `{"statusCode": 200}` request template, one `$default` integration
//! response whose template is a fixed text, a `$default` route response); anything else about such
//! a route, or a route response on a function's route (two-way proxy routes), is refused when the
//! template is read, rather than emulated by guess.

use std::collections::BTreeMap;
use std::path::Path;

use serde_yaml_ng::{Mapping, Value};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum RoutesError {
    #[error("could not read the template {path}: {message}")]
    Read { path: String, message: String },
    #[error("the template has no AWS::ApiGatewayV2::Route wired to a function")]
    NoRoutes,
    #[error("route {route}: {message}")]
    Route { route: String, message: String },
    #[error("{resource}: the local gateway does not emulate {message}")]
    Unsupported { resource: String, message: String },
}

/// How functions are named at the invoke endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FunctionNames {
    /// The package of the function's `CodeUri` (cargo lambda watch).
    Package,
    /// The function's logical id in the template (sam local start-lambda).
    LogicalId,
}

/// Route keys (`$connect`, `$disconnect`, `$default`, or an `action`) and their functions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Routes {
    pub functions: BTreeMap<String, String>,
    /// Routes API Gateway answers itself (a `MOCK` integration), and the text each answers with.
    pub mocks: BTreeMap<String, String>,
    /// The `$connect` route's Lambda REQUEST authorizer, when it has one (`AuthorizationType:
    /// CUSTOM`).
    pub authorizer: Option<Authorizer>,
}

/// Where API Gateway's route selection sends a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selected<'a> {
    /// Invoke `function` with the message, as route `route`.
    Function { route: &'a str, function: &'a str },
    /// Answer the sender with `answer`, invoking nothing.
    Mock { route: &'a str, answer: &'a str },
}

/// A Lambda REQUEST authorizer: API Gateway invokes it before `$connect` and carries the context
/// it returns on every event of the connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authorizer {
    pub function: String,
    /// What must be present, non-empty, for the authorizer to be invoked at all; a handshake
    /// without it is answered 401 by the gateway itself.
    pub identity_sources: Vec<IdentitySource>,
}

/// One `IdentitySource` of an authorizer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdentitySource {
    /// `route.request.querystring.NAME`
    Query(String),
    /// `route.request.header.NAME` (compared case-insensitively)
    Header(String),
}

impl IdentitySource {
    fn parse(text: &str) -> Option<IdentitySource> {
        if let Some(name) = text.strip_prefix("route.request.querystring.") {
            return Some(IdentitySource::Query(name.to_owned()));
        }
        text.strip_prefix("route.request.header.")
            .map(|name| IdentitySource::Header(name.to_ascii_lowercase()))
    }
}

impl Routes {
    pub fn from_file(path: &Path, names: FunctionNames) -> Result<Routes, RoutesError> {
        let text = std::fs::read_to_string(path).map_err(|e| RoutesError::Read {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Self::from_template(&text, names)
    }

    /// The same routes served by functions whose names start with `prefix`: an application other
    /// than the default one, whose binaries sit beside the default's in the workspace
    /// (`workerman-chat-connect` for `connect`). Routes the gateway answers itself stay as they are.
    pub fn with_prefix(mut self, prefix: &str) -> Routes {
        for function in self.functions.values_mut() {
            function.insert_str(0, prefix);
        }
        if let Some(authorizer) = &mut self.authorizer {
            authorizer.function.insert_str(0, prefix);
        }
        self
    }

    pub fn from_template(text: &str, names: FunctionNames) -> Result<Routes, RoutesError> {
        let template: Value = serde_yaml_ng::from_str(text).map_err(|e| RoutesError::Read {
            path: "template".into(),
            message: e.to_string(),
        })?;
        let resources = template
            .get("Resources")
            .and_then(Value::as_mapping)
            .cloned()
            .unwrap_or_default();
        let resource = |id: &str| resources.get(id);
        // The function a `...${Function.Arn}/invocations` URI names, as the invoke endpoint knows it.
        let function_name = |uri: &str| -> Result<String, String> {
            let function = uri
                .split("${")
                .skip(1)
                .find_map(|part| part.split_once(".Arn}").map(|(id, _)| id.to_owned()))
                .ok_or_else(|| format!("{uri:?} names no ${{Function.Arn}}"))?;
            match names {
                FunctionNames::LogicalId => Ok(function),
                FunctionNames::Package => resource(&function)
                    .and_then(|f| f.get("Properties"))
                    .and_then(|p| p.get("CodeUri"))
                    .and_then(Value::as_str)
                    .and_then(|uri| uri.trim_end_matches('/').rsplit('/').next())
                    .map(str::to_owned)
                    .ok_or_else(|| format!("function {function} has no CodeUri")),
            }
        };
        let responses = Responses {
            routes: of_type(&resources, "AWS::ApiGatewayV2::RouteResponse"),
            integrations: of_type(&resources, "AWS::ApiGatewayV2::IntegrationResponse"),
        };
        // The route and integration responses a MOCK route answers with; any other is refused.
        let mut claimed = Vec::new();
        let mut routes = Routes::default();
        for (route_id, route) in of_type(&resources, "AWS::ApiGatewayV2::Route") {
            let properties = route.get("Properties");
            let Some(key) = properties
                .and_then(|p| p.get("RouteKey"))
                .and_then(Value::as_str)
            else {
                continue;
            };
            let fail = |message: String| RoutesError::Route {
                route: key.to_owned(),
                message,
            };
            let target = properties
                .and_then(|p| p.get("Target"))
                .map(substitution)
                .unwrap_or_default();
            let integration = target
                .strip_prefix("integrations/${")
                .and_then(|rest| rest.strip_suffix('}'))
                .ok_or_else(|| {
                    fail(format!(
                        "Target {target:?} is not !Sub integrations/${{Integration}}"
                    ))
                })?;
            let integration_properties = resource(integration)
                .and_then(|i| i.get("Properties"))
                .ok_or_else(|| fail(format!("integration {integration} is not in the template")))?;
            match integration_properties
                .get("IntegrationType")
                .and_then(Value::as_str)
            {
                Some("AWS_PROXY") => {}
                Some("MOCK") => {
                    let mock = Mock {
                        route_id,
                        key,
                        route: properties,
                        integration_id: integration,
                        integration: integration_properties,
                    };
                    let answer = mock.answer(&responses, &mut claimed)?;
                    routes.mocks.insert(key.to_owned(), answer);
                    continue;
                }
                other => {
                    return Err(unsupported(
                        integration,
                        format!("IntegrationType {other:?} (only AWS_PROXY, a function, and MOCK)"),
                    ))
                }
            }
            if properties
                .and_then(|p| p.get("RouteResponseSelectionExpression"))
                .is_some()
            {
                return Err(unsupported(
                    route_id,
                    "a route response on a function's route (two-way: the function's answer sent back to the client)".into(),
                ));
            }
            let uri = integration_properties
                .get("IntegrationUri")
                .map(substitution)
                .ok_or_else(|| fail(format!("integration {integration} has no IntegrationUri")))?;
            let name = function_name(&uri).map_err(fail)?;
            routes.functions.insert(key.to_owned(), name);
            let custom = properties
                .and_then(|p| p.get("AuthorizationType"))
                .and_then(Value::as_str)
                == Some("CUSTOM");
            if key == "$connect" && custom {
                let id = properties
                    .and_then(|p| p.get("AuthorizerId"))
                    .map(substitution)
                    .unwrap_or_default();
                let properties = resource(&id)
                    .and_then(|a| a.get("Properties"))
                    .ok_or_else(|| fail(format!("AuthorizerId {id:?} names no authorizer")))?;
                let uri = properties
                    .get("AuthorizerUri")
                    .map(substitution)
                    .ok_or_else(|| fail(format!("authorizer {id} has no AuthorizerUri")))?;
                let identity_sources = match properties.get("IdentitySource") {
                    None => Vec::new(),
                    Some(sources) => sources
                        .as_sequence()
                        .into_iter()
                        .flatten()
                        .map(|source| {
                            let text = source.as_str().unwrap_or_default();
                            IdentitySource::parse(text).ok_or_else(|| {
                                fail(format!("authorizer {id}: identity source {text:?} is not route.request.querystring.NAME or route.request.header.NAME"))
                            })
                        })
                        .collect::<Result<_, _>>()?,
                };
                routes.authorizer = Some(Authorizer {
                    function: function_name(&uri).map_err(fail)?,
                    identity_sources,
                });
            }
        }
        if let Some((id, _)) = responses
            .routes
            .iter()
            .chain(&responses.integrations)
            .find(|(id, _)| !claimed.contains(id))
        {
            return Err(unsupported(
                id,
                "a response of a route or integration that is not a MOCK (a two-way route: its answer sent back to the client)".into(),
            ));
        }
        if routes.functions.is_empty() {
            return Err(RoutesError::NoRoutes);
        }
        Ok(routes)
    }

    /// The function for a route key.
    pub fn function(&self, route: &str) -> Option<&str> {
        self.functions.get(route).map(String::as_str)
    }

    /// API Gateway's route selection on `$request.body.action`: the route named by the frame's
    /// `action` when one exists, otherwise `$default`.
    pub fn select(&self, body: &str) -> Option<Selected<'_>> {
        let action = serde_json::from_str::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.get("action").and_then(|a| a.as_str()).map(str::to_owned));
        let routed = |key: &str| self.functions.contains_key(key) || self.mocks.contains_key(key);
        let key = match action {
            Some(action) if !action.starts_with('$') && routed(&action) => action,
            _ => "$default".to_owned(),
        };
        if let Some((route, function)) = self.functions.get_key_value(&key) {
            return Some(Selected::Function { route, function });
        }
        self.mocks
            .get_key_value(&key)
            .map(|(route, answer)| Selected::Mock { route, answer })
    }
}

fn unsupported(resource: &str, message: String) -> RoutesError {
    RoutesError::Unsupported {
        resource: resource.to_owned(),
        message,
    }
}

/// The template's resources of one type, with their logical ids.
fn of_type<'t>(resources: &'t Mapping, kind: &str) -> Vec<(&'t str, &'t Value)> {
    resources
        .iter()
        .filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some(kind))
        .filter_map(|(id, r)| Some((id.as_str()?, r)))
        .collect()
}

/// The template's route responses and integration responses.
struct Responses<'t> {
    routes: Vec<(&'t str, &'t Value)>,
    integrations: Vec<(&'t str, &'t Value)>,
}

/// A route whose integration is a MOCK.
struct Mock<'t> {
    route_id: &'t str,
    key: &'t str,
    route: Option<&'t Value>,
    integration_id: &'t str,
    integration: &'t Value,
}

/// The `$default` selection expression, `$` escaped, as a template writes it to name the
/// `$default` template.
const ESCAPED_DEFAULT: &str = "\\$default";

impl Mock<'_> {
    /// What API Gateway sends back for this route: its one integration response's template,
    /// which must be a fixed text (no `$` or `#`, so Velocity leaves it as it is). Anything else
    /// about the route is refused.
    fn answer<'r>(
        &self,
        responses: &Responses<'r>,
        claimed: &mut Vec<&'r str>,
    ) -> Result<String, RoutesError> {
        let route_id = self.route_id;
        if self.key.starts_with('$') && self.key != "$default" {
            return Err(unsupported(
                route_id,
                format!("a MOCK integration on {}", self.key),
            ));
        }
        only(
            route_id,
            self.route,
            &[
                "ApiId",
                "RouteKey",
                "AuthorizationType",
                "OperationName",
                "RouteResponseSelectionExpression",
                "Target",
            ],
        )?;
        let route = |name: &str| self.route.and_then(|p| p.get(name)).and_then(Value::as_str);
        if route("AuthorizationType").is_some_and(|t| t != "NONE") {
            return Err(unsupported(route_id, "an authorized MOCK route".into()));
        }
        match route("RouteResponseSelectionExpression") {
            Some("$default") => {}
            None => return Err(unsupported(route_id, "a MOCK route without RouteResponseSelectionExpression: $default (one-way: nothing is sent back)".into())),
            Some(other) => return Err(unsupported(route_id, format!("RouteResponseSelectionExpression {other:?} (WebSocket APIs have only $default)"))),
        }
        let (response_id, response) = one_referring(&responses.routes, "RouteId", route_id)?;
        only(
            response_id,
            response,
            &["ApiId", "RouteId", "RouteResponseKey"],
        )?;
        expect(response_id, response, "RouteResponseKey", "$default")?;
        claimed.push(response_id);

        let integration_id = self.integration_id;
        let integration = Some(self.integration);
        only(
            integration_id,
            integration,
            &[
                "ApiId",
                "IntegrationType",
                "Description",
                "TemplateSelectionExpression",
                "RequestTemplates",
            ],
        )?;
        expect(
            integration_id,
            integration,
            "TemplateSelectionExpression",
            ESCAPED_DEFAULT,
        )?;
        let request = default_template(integration_id, integration, "RequestTemplates")?;
        if serde_json::from_str::<serde_json::Value>(request).ok()
            != Some(serde_json::json!({"statusCode": 200}))
        {
            return Err(unsupported(
                integration_id,
                format!("a request template other than {{\"statusCode\": 200}}: {request:?}"),
            ));
        }
        let (answer_id, answer) =
            one_referring(&responses.integrations, "IntegrationId", integration_id)?;
        only(
            answer_id,
            answer,
            &[
                "ApiId",
                "IntegrationId",
                "IntegrationResponseKey",
                "TemplateSelectionExpression",
                "ResponseTemplates",
            ],
        )?;
        expect(answer_id, answer, "IntegrationResponseKey", "$default")?;
        expect(
            answer_id,
            answer,
            "TemplateSelectionExpression",
            ESCAPED_DEFAULT,
        )?;
        let body = default_template(answer_id, answer, "ResponseTemplates")?;
        if body.contains(['$', '#']) {
            return Err(unsupported(
                answer_id,
                format!("a response template that Velocity would change (it has $ or #): {body:?}"),
            ));
        }
        claimed.push(answer_id);
        Ok(body.to_owned())
    }
}

/// Refuses a resource with a property outside `allowed`.
fn only(id: &str, properties: Option<&Value>, allowed: &[&str]) -> Result<(), RoutesError> {
    let names = properties
        .and_then(Value::as_mapping)
        .into_iter()
        .flat_map(Mapping::keys);
    for name in names {
        let name = name.as_str().unwrap_or_default();
        if !allowed.contains(&name) {
            return Err(unsupported(id, format!("its property {name}")));
        }
    }
    Ok(())
}

/// Refuses a resource whose property `name` is not the string `value`.
fn expect(
    id: &str,
    properties: Option<&Value>,
    name: &str,
    value: &str,
) -> Result<(), RoutesError> {
    match properties.and_then(|p| p.get(name)) {
        Some(Value::String(found)) if found == value => Ok(()),
        found => Err(unsupported(
            id,
            format!("{name} {} (only {value:?})", shown(found)),
        )),
    }
}

/// The one template of a map of templates, which must be keyed `$default`.
fn default_template<'v>(
    id: &str,
    properties: Option<&'v Value>,
    name: &str,
) -> Result<&'v str, RoutesError> {
    let templates = properties
        .and_then(|p| p.get(name))
        .and_then(Value::as_mapping);
    match templates.map(|t| t.iter().collect::<Vec<_>>()).as_deref() {
        Some([(Value::String(key), Value::String(template))]) if key == "$default" => Ok(template),
        _ => Err(unsupported(
            id,
            format!("{name} other than one template keyed $default"),
        )),
    }
}

/// The one resource among `candidates` whose `property` is `!Ref target`.
fn one_referring<'t>(
    candidates: &[(&'t str, &'t Value)],
    property: &str,
    target: &str,
) -> Result<(&'t str, Option<&'t Value>), RoutesError> {
    let found: Vec<_> = candidates
        .iter()
        .filter(|(_, r)| {
            r.get("Properties")
                .and_then(|p| p.get(property))
                .and_then(reference)
                == Some(target)
        })
        .collect();
    match found[..] {
        [&(id, resource)] => Ok((id, resource.get("Properties"))),
        _ => Err(unsupported(
            target,
            format!(
                "a MOCK without exactly one response whose {property} is !Ref {target} ({} found)",
                found.len()
            ),
        )),
    }
}

/// A property's value, for an error message.
fn shown(value: Option<&Value>) -> String {
    match value {
        Some(Value::String(text)) => format!("{text:?}"),
        Some(other) => format!("{other:?}"),
        None => "missing".into(),
    }
}

/// The logical id a `!Ref` names.
fn reference(value: &Value) -> Option<&str> {
    match value {
        Value::Tagged(tagged) if tagged.tag == "Ref" => tagged.value.as_str(),
        _ => None,
    }
}

/// The string of a `!Sub "..."` (or a plain string).
fn substitution(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Tagged(tagged) => tagged.value.as_str().map(str::to_owned).unwrap_or_default(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROJECT_TEMPLATE: &str = include_str!("../../template.yaml");

    #[test]
    fn the_projects_template_wires_the_three_functions() {
        let routes = Routes::from_template(PROJECT_TEMPLATE, FunctionNames::Package).unwrap();
        assert_eq!(routes.function("$connect"), Some("connect"));
        assert_eq!(routes.function("$disconnect"), Some("disconnect"));
        assert_eq!(routes.function("$default"), Some("message"));
    }

    #[test]
    fn the_connect_function_is_also_the_connect_routes_authorizer() {
        let routes = Routes::from_template(PROJECT_TEMPLATE, FunctionNames::Package).unwrap();
        let authorizer = routes.authorizer.expect("an authorizer on $connect");
        assert_eq!(authorizer.function, "connect");
        assert_eq!(
            authorizer.identity_sources,
            vec![IdentitySource::Query("token".into())],
            "a handshake without ?token= never reaches the function"
        );
    }

    #[test]
    fn the_projects_ping_is_answered_by_the_gateway_with_the_protocols_pong() {
        let routes = Routes::from_template(PROJECT_TEMPLATE, FunctionNames::Package).unwrap();
        for frame in [r#"{"action":"ping"}"#, r#"{"action":"ping","id":"p1"}"#] {
            assert_eq!(
                routes.select(frame),
                Some(Selected::Mock {
                    route: "ping",
                    answer: r#"{"type":"pong"}"#
                }),
                "{frame}"
            );
        }
        assert_eq!(
            routes.select(r#"{"action":"whoami"}"#),
            Some(Selected::Function {
                route: "$default",
                function: "message"
            })
        );
    }

    #[test]
    fn another_application_serves_the_same_routes_under_its_prefix() {
        let routes = Routes::from_template(PROJECT_TEMPLATE, FunctionNames::Package)
            .unwrap()
            .with_prefix("workerman-chat-");
        assert_eq!(routes.function("$connect"), Some("workerman-chat-connect"));
        assert_eq!(routes.function("$default"), Some("workerman-chat-message"));
        assert_eq!(
            routes.authorizer.map(|a| a.function).as_deref(),
            Some("workerman-chat-connect")
        );
    }

    #[test]
    fn workerman_chats_own_frames_are_not_taken_by_the_ping_route() {
        // Its page speaks `type`, never `action`: its `pong` (and anything it sends) goes to its
        // message function.
        let routes = Routes::from_template(PROJECT_TEMPLATE, FunctionNames::Package)
            .unwrap()
            .with_prefix("workerman-chat-");
        for frame in [
            r#"{"type":"pong"}"#,
            r#"{"type":"ping"}"#,
            r#"{"type":"login","room_id":"1","client_name":"ann"}"#,
            r#"{"type":"say","to_client_id":"all","to_client_name":"all","content":"hi"}"#,
        ] {
            assert_eq!(
                routes.select(frame),
                Some(Selected::Function {
                    route: "$default",
                    function: "workerman-chat-message"
                }),
                "{frame}"
            );
        }
    }

    #[test]
    fn identity_sources_are_read_from_the_authorizer() {
        let template = r#"
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties: { CodeUri: ./functions/auth }
  Auth:
    Type: AWS::ApiGatewayV2::Authorizer
    Properties:
      AuthorizerUri: !Sub arn:aws:apigateway:r:lambda:path/2015-03-31/functions/${Fn.Arn}/invocations
      IdentitySource: [route.request.querystring.token, route.request.header.X-Key]
  Integration:
    Type: AWS::ApiGatewayV2::Integration
    Properties: { IntegrationType: AWS_PROXY, IntegrationUri: !Sub "x/${Fn.Arn}/invocations" }
  Route:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      RouteKey: $connect
      AuthorizationType: CUSTOM
      AuthorizerId: !Ref Auth
      Target: !Sub integrations/${Integration}
"#;
        let routes = Routes::from_template(template, FunctionNames::Package).unwrap();
        assert_eq!(
            routes.authorizer,
            Some(Authorizer {
                function: "auth".into(),
                identity_sources: vec![
                    IdentitySource::Query("token".into()),
                    IdentitySource::Header("x-key".into())
                ],
            })
        );
    }

    #[test]
    fn logical_ids_name_functions_for_sam_local() {
        let routes = Routes::from_template(PROJECT_TEMPLATE, FunctionNames::LogicalId).unwrap();
        assert_eq!(routes.function("$connect"), Some("ConnectFunction"));
    }

    #[test]
    fn an_action_with_its_own_route_selects_it_and_anything_else_goes_to_default() {
        let routes = Routes {
            functions: [("$default", "message"), ("sendmessage", "chat")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            mocks: BTreeMap::from([("ping".to_owned(), "pong!".to_owned())]),
            authorizer: None,
        };
        let function = |route, function| Some(Selected::Function { route, function });
        assert_eq!(
            routes.select(r#"{"action":"sendmessage"}"#),
            function("sendmessage", "chat")
        );
        assert_eq!(
            routes.select(r#"{"action":"ping"}"#),
            Some(Selected::Mock {
                route: "ping",
                answer: "pong!"
            })
        );
        assert_eq!(
            routes.select(r#"{"action":"dance"}"#),
            function("$default", "message")
        );
        assert_eq!(routes.select("not json"), function("$default", "message"));
        assert_eq!(
            routes.select(r#"{"action":"$connect"}"#),
            function("$default", "message")
        );
    }

    #[test]
    fn a_template_without_routes_is_an_error() {
        assert!(matches!(
            Routes::from_template("Resources: {}", FunctionNames::Package),
            Err(RoutesError::NoRoutes)
        ));
    }

    /// A function on `$default` and a mock `ping`, shaped as the project's template has them.
    const MOCK_TEMPLATE: &str = r#"
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties: { CodeUri: ./functions/message }
  FnIntegration:
    Type: AWS::ApiGatewayV2::Integration
    Properties: { IntegrationType: AWS_PROXY, IntegrationUri: !Sub "x/${Fn.Arn}/invocations" }
  DefaultRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties: { RouteKey: $default, Target: !Sub "integrations/${FnIntegration}" }
  PingIntegration:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref Api
      IntegrationType: MOCK
      TemplateSelectionExpression: \$default
      RequestTemplates:
        $default: '{"statusCode": 200}'
  PingIntegrationResponse:
    Type: AWS::ApiGatewayV2::IntegrationResponse
    Properties:
      ApiId: !Ref Api
      IntegrationId: !Ref PingIntegration
      IntegrationResponseKey: $default
      TemplateSelectionExpression: \$default
      ResponseTemplates:
        $default: '{"type":"pong"}'
  PingRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref Api
      RouteKey: ping
      AuthorizationType: NONE
      RouteResponseSelectionExpression: $default
      Target: !Sub integrations/${PingIntegration}
  PingRouteResponse:
    Type: AWS::ApiGatewayV2::RouteResponse
    Properties:
      ApiId: !Ref Api
      RouteId: !Ref PingRoute
      RouteResponseKey: $default
"#;

    #[test]
    fn a_mock_route_answers_its_response_template() {
        let routes = Routes::from_template(MOCK_TEMPLATE, FunctionNames::Package).unwrap();
        assert_eq!(
            routes.mocks,
            BTreeMap::from([("ping".to_owned(), r#"{"type":"pong"}"#.to_owned())])
        );
        assert_eq!(routes.function("ping"), None, "no function serves it");
    }

    #[test]
    fn a_mock_feature_the_gateway_does_not_emulate_is_refused_when_the_template_is_read() {
        let variants = [
            // Velocity at work in the answer.
            (
                r#"$default: '{"type":"pong"}'"#,
                r#"$default: '{"id":"$context.connectionId"}'"#,
            ),
            // Another status from the request template.
            (
                r#"$default: '{"statusCode": 200}'"#,
                r#"$default: '{"statusCode": 500}'"#,
            ),
            // Templates chosen by the request's content.
            (
                "TemplateSelectionExpression: \\$default\n      RequestTemplates:",
                "TemplateSelectionExpression: $request.body.action\n      RequestTemplates:",
            ),
            // One-way: no route response.
            ("      RouteResponseSelectionExpression: $default\n", ""),
            // Integration responses chosen by status.
            (
                "IntegrationResponseKey: $default",
                "IntegrationResponseKey: /200/",
            ),
            // A property it does not know.
            (
                "      RouteResponseKey: $default\n",
                "      RouteResponseKey: $default\n      ModelSelectionExpression: $default\n",
            ),
            // A function's route made two-way.
            (
                r#"Properties: { RouteKey: $default, Target: !Sub "integrations/${FnIntegration}" }"#,
                r#"Properties: { RouteKey: $default, RouteResponseSelectionExpression: $default, Target: !Sub "integrations/${FnIntegration}" }"#,
            ),
            // A route response for the function's route.
            ("RouteId: !Ref PingRoute", "RouteId: !Ref DefaultRoute"),
            // A mock handshake.
            ("RouteKey: ping", "RouteKey: $connect"),
        ];
        for (from, to) in variants {
            assert_eq!(MOCK_TEMPLATE.matches(from).count(), 1, "{from}");
            let template = MOCK_TEMPLATE.replace(from, to);
            match Routes::from_template(&template, FunctionNames::Package) {
                Err(RoutesError::Unsupported { .. }) => {}
                other => panic!("{to:?} was not refused: {other:?}"),
            }
        }
    }
}
