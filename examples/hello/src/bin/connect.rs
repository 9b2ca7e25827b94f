//! The hello chat's `$connect` function.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::lambda::connect(hello::Hello).await
}
