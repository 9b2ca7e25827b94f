//! workerman-chat's `$disconnect` function: the default one's `main.rs`, handed the chat instead.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::lambda::disconnect(workerman_chat::Chat).await
}
