//! The local DynamoDB: [dynoxide](https://crates.io/crates/dynoxide-rs), a DynamoDB-compatible
//! server backed by SQLite, served over HTTP on a listener the caller chose.
//!
//! Why dynoxide and not moto: it answers requests concurrently with an indexed Query (moto walks
//! the whole table for each one, one request at a time, and so dominated every timing of the local
//! stack), and it refuses what DynamoDB refuses (unused expression names and values, reserved
//! words used bare), so a request that works here works on AWS. moto stays one switch away
//! (`DYNAMODB=moto`) to compare.
//!
//! Like DynamoDB, it never deletes an expired item by itself here: DynamoDB's TTL deletes items
//! days late, so the service must ignore what has expired, and the local loop must not hide a
//! read that forgets to.

use std::future::Future;

/// Serves a fresh in-memory database on `listener` until `shutdown` resolves.
///
/// Each call is its own database: nothing is shared between two servers, and nothing outlives
/// the process.
pub async fn serve(
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let database =
        dynoxide::Database::memory().map_err(|e| format!("open SQLite in memory: {e}"))?;
    dynoxide::server::serve_with_shutdown(listener, database, shutdown).await
}

/// Starts a server on a thread of its own, with a runtime of its own, on `listener` (already
/// bound, so the caller knows the port before anything connects). It lives as long as the
/// process: what a test binary needs, whose tests each run on a runtime that ends with them.
pub fn spawn(listener: std::net::TcpListener) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("local-dynamodb")
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("local-dynamodb".into())
        .spawn(move || {
            runtime.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(listener) => listener,
                    Err(e) => return eprintln!("local-dynamodb: {e}"),
                };
                if let Err(e) = serve(listener, std::future::pending()).await {
                    eprintln!("local-dynamodb: {e}");
                }
            })
        })?;
    Ok(())
}
