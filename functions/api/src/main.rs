//! The server API's function: the Gateway's calls as JSON, for backends in any language, through
//! Lambda's Invoke API (IAM) or its function URL (HMAC-signed): see `shared::server_api`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::lambda::api::run().await
}
