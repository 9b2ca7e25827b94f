//! `GET /client/{file}`: the client library's built files (`clients/js/dist`), which the chat
//! page imports. Read from disk on each request, so a rebuilt library needs no restart.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::Gateway;

/// A file name the library's build makes: no directories, nothing hidden.
fn is_library_file(name: &str) -> bool {
    (name.ends_with(".js") || name.ends_with(".js.map"))
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
}

pub async fn file(Path(name): Path<String>, State(gateway): State<Arc<Gateway>>) -> Response {
    let Some(dir) = &gateway.settings.client_library else {
        return (
            StatusCode::NOT_FOUND,
            "the client library is not served: start the gateway with --client-library clients/js/dist (make dev does)\n",
        )
            .into_response();
    };
    if !is_library_file(&name) {
        return (StatusCode::NOT_FOUND, "no such file\n").into_response();
    }
    match tokio::fs::read(dir.join(&name)).await {
        Ok(body) => {
            let kind = if name.ends_with(".map") {
                "application/json"
            } else {
                "text/javascript; charset=utf-8"
            };
            ([(header::CONTENT_TYPE, kind)], body).into_response()
        }
        Err(e) => (
            StatusCode::NOT_FOUND,
            format!(
                "cannot read {}: {e} (build the library: cd clients/js && npm ci && npm run build)\n",
                dir.join(&name).display()
            ),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::is_library_file;

    #[test]
    fn only_the_library_files_are_served() {
        assert!(is_library_file("index.js"));
        assert!(is_library_file("client.js.map"));
        assert!(!is_library_file("../Cargo.toml"));
        assert!(!is_library_file("..%2Fsecret.js"));
        assert!(!is_library_file(".hidden.js"));
        assert!(!is_library_file("index.d.ts"));
    }
}
