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
}

impl Routes {
    pub fn from_file(path: &Path, names: FunctionNames) -> Result<Routes, RoutesError> {
        let text = std::fs::read_to_string(path).map_err(|e| RoutesError::Read {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        Self::from_template(&text, names)
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
            let function = uri
                .split("${")
                .skip(1)
                .find_map(|part| part.split_once(".Arn}").map(|(id, _)| id.to_owned()))
                .ok_or_else(|| {
                    fail(format!("IntegrationUri {uri:?} names no ${{Function.Arn}}"))
                })?;
            let name = match names {
                FunctionNames::LogicalId => function.clone(),
                FunctionNames::Package => resource(&function)
                    .and_then(|f| f.get("Properties"))
                    .and_then(|p| p.get("CodeUri"))
                    .and_then(Value::as_str)
                    .and_then(|uri| uri.trim_end_matches('/').rsplit('/').next())
                    .map(str::to_owned)
                    .ok_or_else(|| fail(format!("function {function} has no CodeUri")))?,
            };
            routes.functions.insert(key.to_owned(), name);
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
