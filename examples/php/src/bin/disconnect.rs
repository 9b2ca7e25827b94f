//! The `$disconnect` function of an application whose events an `Events.php` handles.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::lambda::disconnect(shared::forward::Forward::from_env()?).await
}
