//! The `message routes` function of an application whose events an `Events.php` handles.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::lambda::message(shared::forward::Forward::from_env()?).await
}
