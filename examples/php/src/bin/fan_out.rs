//! The fan-out function of an application whose events an `Events.php` handles: large sends' workers, which forward `onClose` for the recipients they find gone.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::lambda::fan_out(shared::forward::Forward::from_env()?).await
}
