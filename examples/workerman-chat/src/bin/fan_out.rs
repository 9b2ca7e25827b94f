//! workerman-chat's fan-out function: the default one's `main.rs`, handed the chat instead.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::lambda::fan_out(workerman_chat::Chat).await
}
