//! The hello chat's fan-out function (large sends' workers).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::lambda::fan_out(hello::Hello).await
}
