//! The hello chat's `message routes` function.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::lambda::message(hello::Hello).await
}
