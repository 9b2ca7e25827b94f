//! workerman-chat's `message routes` function: the default one's `main.rs`, handed the chat instead.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::lambda::message(workerman_chat::Chat).await
}
