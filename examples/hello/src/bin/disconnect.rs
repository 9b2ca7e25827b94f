//! The hello chat's `$disconnect` function.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::lambda::disconnect(hello::Hello).await
}
