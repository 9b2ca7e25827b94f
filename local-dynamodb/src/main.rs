//! `local-dynamodb`: a DynamoDB-compatible server on this machine, for `make dev`.

use clap::Parser;

/// A DynamoDB-compatible server (dynoxide, in memory) for the local stack. Every request is
/// answered as DynamoDB would, except that expired items stay until deleted, as they may on AWS
/// for days. Its data lives as long as the process.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Where to listen (loopback only: it checks no credentials).
    #[arg(long, env = "DYNAMODB_ADDRESS", default_value = "127.0.0.1:8000")]
    listen: String,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let listener = match tokio::net::TcpListener::bind(&args.listen).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("local-dynamodb: cannot listen on {}: {e}", args.listen);
            std::process::exit(1);
        }
    };
    eprintln!("local-dynamodb: DynamoDB API on http://{}", args.listen);
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    if let Err(e) = local_dynamodb::serve(listener, stop).await {
        eprintln!("local-dynamodb: {e}");
        std::process::exit(1);
    }
}
