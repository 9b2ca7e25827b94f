//! Which function serves which route, read from the SAM template, so that the template is the one
//! source of truth for both AWS and local runs.
//!
//! The template wires `AWS::ApiGatewayV2::Route` → `Target: !Sub integrations/${Integration}` →
//! `IntegrationUri: !Sub ...${Function.Arn}...` → an `AWS::Serverless::Function`. Locally a function
//! is invoked by the last part of its `CodeUri` (the Cargo package, which is the name `cargo lambda
//! watch` serves it under) or, with `--function-names logical-id`, by its logical id (the name `sam
//! local start-lambda` uses).

use std::collections::BTreeMap;
use std::path::Path;

use serde_yaml_ng::Value;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum RoutesError {
    #[error("could not read the template {path}: {message}")]
    Read { path: String, message: String },
    #[error("the template has no AWS::ApiGatewayV2::Route wired to a function")]
    NoRoutes,
    #[error("route {route}: {message}")]
    Route { route: String, message: String },
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
    /// The `$connect` route's Lambda REQUEST authorizer, when it has one (`AuthorizationType:
    /// CUSTOM`).
    pub authorizer: Option<Authorizer>,
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
    /// (`workerman-chat-connect` for `connect`).
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
        let mut routes = Routes::default();
        for (_, route) in resources.iter() {
            if route.get("Type").and_then(Value::as_str) != Some("AWS::ApiGatewayV2::Route") {
                continue;
            }
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
            let uri = resource(integration)
                .and_then(|i| i.get("Properties"))
                .and_then(|p| p.get("IntegrationUri"))
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
    pub fn select(&self, body: &str) -> Option<(&str, &str)> {
        let action = serde_json::from_str::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.get("action").and_then(|a| a.as_str()).map(str::to_owned));
        let key = match action {
            Some(action) if !action.starts_with('$') && self.functions.contains_key(&action) => {
                action
            }
            _ => "$default".to_owned(),
        };
        self.functions
            .get_key_value(&key)
            .map(|(k, f)| (k.as_str(), f.as_str()))
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
    Properties: { IntegrationUri: !Sub "x/${Fn.Arn}/invocations" }
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
            authorizer: None,
        };
        assert_eq!(
            routes.select(r#"{"action":"sendmessage"}"#),
            Some(("sendmessage", "chat"))
        );
        assert_eq!(
            routes.select(r#"{"action":"ping"}"#),
            Some(("$default", "message"))
        );
        assert_eq!(routes.select("not json"), Some(("$default", "message")));
        assert_eq!(
            routes.select(r#"{"action":"$connect"}"#),
            Some(("$default", "message"))
        );
    }

    #[test]
    fn a_template_without_routes_is_an_error() {
        assert!(matches!(
            Routes::from_template("Resources: {}", FunctionNames::Package),
            Err(RoutesError::NoRoutes)
        ));
    }
}
