//! The hello chat's `$disconnect` function.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::functions::disconnect(hello::Hello).await
}
