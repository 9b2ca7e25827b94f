//! `gateway-client`: what GatewayWorker's GatewayClient does for a PHP backend, from a shell,
//! a cron job or a web backend — push to clients, uids, groups or everyone; kick; presence;
//! sessions; uid and group management. It works on the same table and management endpoint as the
//! functions, deployed (the stack's outputs) or under `make dev`. Every answer is one JSON line.
//! `token` mints a client token (with claims) with the stack's current token key, and needs
//! neither.

use aws_config::BehaviorVersion;
use clap::{Args, Parser, Subcommand};
use serde_json::{json, Value};
use shared::auth::token_keys::{KeyRing, TokenKeys};
use shared::aws::secrets_manager::SecretsManager;
use shared::lambda::init::AwsGateway;
use shared::server_api::call::To as CallTo;
use shared::server_api::Call;
use shared::{Config, Error};

#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// The connections table (the stack's TableName output).
    #[arg(long, env = "TABLE_NAME", global = true)]
    table: Option<String>,
    /// The management endpoint (the stack's ManagementEndpoint output; make dev: http://127.0.0.1:8080/dev).
    #[arg(long, env = "MANAGEMENT_ENDPOINT", global = true)]
    endpoint: Option<String>,
    /// A DynamoDB-compatible server instead of AWS (make dev: http://127.0.0.1:8000).
    #[arg(long, env = "DYNAMODB_ENDPOINT", global = true)]
    dynamodb_endpoint: Option<String>,
    #[command(subcommand)]
    command: Command,
}

/// Who a send is for: exactly one kind, each taking one or more names.
#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
struct To {
    /// sendToClient: a connection id (repeat for several).
    #[arg(long = "client", allow_hyphen_values = true)]
    clients: Vec<String>,
    /// sendToUid: a uid (repeat for several).
    #[arg(long = "uid")]
    uids: Vec<String>,
    /// sendToGroup: a group (repeat for several).
    #[arg(long = "group")]
    groups: Vec<String>,
    /// sendToAll.
    #[arg(long)]
    all: bool,
}

impl To {
    fn into_call(self) -> CallTo {
        let one_or_many =
            |mut names: Vec<String>, one: fn(String) -> CallTo, many: fn(Vec<String>) -> CallTo| {
                if names.len() == 1 {
                    one(names.remove(0))
                } else {
                    many(names)
                }
            };
        if self.all {
            CallTo::All(true)
        } else if !self.clients.is_empty() {
            one_or_many(self.clients, CallTo::Client, CallTo::Clients)
        } else if !self.uids.is_empty() {
            one_or_many(self.uids, CallTo::Uid, CallTo::Uids)
        } else {
            one_or_many(self.groups, CallTo::Group, CallTo::Groups)
        }
    }
}

/// One connection or every connection of a uid.
#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
struct Who {
    #[arg(long, allow_hyphen_values = true)]
    client: Option<String>,
    #[arg(long)]
    uid: Option<String>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Push a text frame (sent as given) to clients, uids, groups or everyone.
    Send {
        #[command(flatten)]
        to: To,
        /// A connection id that must not receive it (repeat for several).
        #[arg(long, allow_hyphen_values = true)]
        exclude: Vec<String>,
        /// The frame's text.
        data: String,
    },
    /// Close a connection, or every connection of a uid (the $disconnect that follows ends each:
    /// its records removed, its followers told, the application's on_close run).
    Kick {
        #[command(flatten)]
        who: Who,
    },
    /// Connections and distinct uids, of a group or of everyone.
    Presence {
        #[arg(long)]
        group: Option<String>,
    },
    /// Whether a connection, or any connection of a uid, is online; with the connections of a uid.
    Online {
        #[command(flatten)]
        who: Who,
    },
    /// The connection ids of a group.
    Members { group: String },
    /// Bind a uid to a connection that has none.
    Bind {
        #[arg(allow_hyphen_values = true)]
        connection_id: String,
        uid: String,
    },
    /// Remove a connection's uid binding.
    Unbind {
        #[arg(allow_hyphen_values = true)]
        connection_id: String,
    },
    /// Add a connection to a group.
    Join {
        #[arg(allow_hyphen_values = true)]
        connection_id: String,
        group: String,
    },
    /// Take a connection out of a group.
    Leave {
        #[arg(allow_hyphen_values = true)]
        connection_id: String,
        group: String,
    },
    /// Take every member out of a group.
    Ungroup { group: String },
    /// Read or change a connection's session.
    Session {
        #[command(subcommand)]
        action: SessionAction,
    },
    /// Mint a token a client connects with (?token=): HS256, signed with the current key of the
    /// stack's token secret and naming it (kid), for the stack's audience (aud).
    Token(TokenArgs),
}

#[derive(Args, Debug)]
struct TokenArgs {
    /// The Secrets Manager secret that holds the token keys (the stack's TokenSecretArn output),
    /// read with your AWS credentials.
    #[arg(long, env = "AUTH_SECRET_ARN")]
    secret_arn: Option<String>,
    /// Or the keys themselves: the secret's JSON text ({"kid":…,"secret":…,…}), or a bare key
    /// (make dev's AUTH_SECRET).
    #[arg(long, env = "AUTH_SECRET", hide_env_values = true)]
    secret: Option<String>,
    /// A Secrets Manager-compatible server instead of AWS, for --secret-arn.
    #[arg(long, env = "SECRETS_MANAGER_ENDPOINT")]
    secrets_endpoint: Option<String>,
    /// The aud claim: the stack's TokenAudience.
    #[arg(long, env = "TOKEN_AUDIENCE", default_value = "ws")]
    audience: String,
    /// The connection's uid (the token's sub).
    uid: String,
    /// How long the token is valid: only the handshake needs it, and the stack refuses tokens
    /// valid for longer than MAX_TOKEN_LIFETIME_SECONDS (600 by default).
    #[arg(long, default_value_t = 300)]
    seconds: u64,
    /// A group pattern it may join and see the presence of (`room-*`); repeat for several.
    #[arg(long = "group")]
    groups: Vec<String>,
    /// A target pattern it may send to (`group:room-*`, `uid:*`, `connection`, `all`); repeat
    /// for several.
    #[arg(long = "send")]
    send: Vec<String>,
}

#[derive(Subcommand, Debug)]
enum SessionAction {
    Get {
        #[arg(allow_hyphen_values = true)]
        connection_id: String,
    },
    /// Replace the session with a JSON value.
    Set {
        #[arg(allow_hyphen_values = true)]
        connection_id: String,
        json: String,
    },
    /// Merge a JSON object's keys into the session.
    Update {
        #[arg(allow_hyphen_values = true)]
        connection_id: String,
        json: String,
    },
}

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(answer) => println!("{answer}"),
        Err(message) => {
            eprintln!("gateway-client: {message}");
            std::process::exit(1);
        }
    }
}

async fn gateway(cli: &Cli) -> Result<AwsGateway, String> {
    let table = cli
        .table
        .clone()
        .ok_or("no table: pass --table or set TABLE_NAME (the stack's TableName output)")?;
    let mut config = Config::new(table);
    config.management_endpoint = cli
        .endpoint
        .as_ref()
        .map(|e| e.trim_end_matches('/').to_owned());
    config.dynamodb_endpoint = cli.dynamodb_endpoint.clone();
    let sdk = aws_config::load_defaults(BehaviorVersion::latest()).await;
    Ok(shared::lambda::init::gateway(config, &sdk))
}

/// `token`: a client token for `uid` with these claims, signed with the current key.
async fn token(args: &TokenArgs) -> Result<Value, String> {
    let keys = match (&args.secret, &args.secret_arn) {
        (Some(_), Some(_)) => {
            return Err(
                "give --secret or --secret-arn (AUTH_SECRET or AUTH_SECRET_ARN), not both".into(),
            )
        }
        (Some(text), None) => KeyRing::from_text(text).map_err(|e| format!("--secret: {e}"))?,
        (None, Some(arn)) => {
            let sdk = aws_config::load_defaults(BehaviorVersion::latest()).await;
            let secrets = SecretsManager::from_sdk(&sdk, args.secrets_endpoint.as_deref());
            TokenKeys::new(secrets, arn)
                .read()
                .await
                .map_err(|e| e.to_string())?
        }
        (None, None) => {
            return Err(
                "no token key: pass --secret-arn (the stack's TokenSecretArn output) or --secret"
                    .into(),
            )
        }
    };
    let key = keys.current().ok_or("the secret holds no key")?;
    let lifetime = std::time::Duration::from_secs(args.seconds);
    let token = shared::auth::mint(
        key,
        &args.audience,
        &args.uid,
        lifetime,
        &args.groups,
        &args.send,
    )
    .map_err(|e| e.to_string())?;
    Ok(json!({ "token": token }))
}

fn parse_json(text: &str) -> Result<Value, String> {
    serde_json::from_str(text).map_err(|e| format!("{text:?} is not JSON: {e}"))
}

async fn run(cli: Cli) -> Result<Value, String> {
    if let Command::Token(args) = &cli.command {
        return token(args).await;
    }
    let gateway = gateway(&cli).await?;
    // The server API's call: what its function runs for a backend, this runs here.
    let call = call(cli.command)?;
    call.check()?;
    call.run(&gateway).await.map_err(|e: Error| e.to_string())
}

/// The server API's call for a command (`token` excepted: it needs no table).
fn call(command: Command) -> Result<Call, String> {
    Ok(match command {
        Command::Send { to, exclude, data } => Call::Send {
            to: to.into_call(),
            data: Value::String(data),
            exclude,
        },
        Command::Kick { who } => Call::Kick {
            client: who.client,
            uid: who.uid,
        },
        Command::Presence { group } => Call::Presence { group },
        Command::Online { who } => Call::Online {
            client: who.client,
            uid: who.uid,
        },
        Command::Members { group } => Call::Members { group },
        Command::Bind { connection_id, uid } => Call::Bind {
            client: connection_id,
            uid,
        },
        Command::Unbind { connection_id } => Call::Unbind {
            client: connection_id,
        },
        Command::Join {
            connection_id,
            group,
        } => Call::Join {
            client: connection_id,
            group,
        },
        Command::Leave {
            connection_id,
            group,
        } => Call::Leave {
            client: connection_id,
            group,
        },
        Command::Ungroup { group } => Call::Ungroup { group },
        Command::Session { action } => match action {
            SessionAction::Get { connection_id } => Call::Session {
                client: connection_id,
            },
            SessionAction::Set {
                connection_id,
                json,
            } => Call::SetSession {
                client: connection_id,
                session: parse_json(&json)?,
            },
            SessionAction::Update {
                connection_id,
                json,
            } => {
                let Value::Object(session) = parse_json(&json)? else {
                    return Err("session update takes a JSON object".into());
                };
                Call::UpdateSession {
                    client: connection_id,
                    session,
                }
            }
        },
        Command::Token(_) => return Err("token needs no call".into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Connection ids may begin with `-` (API Gateway's alphabet has it): they are values, never
    /// flags.
    #[test]
    fn a_connection_id_beginning_with_a_hyphen_is_a_value() {
        let cli = Cli::try_parse_from(["gateway-client", "send", "--client", "-J1x=", "hi"])
            .expect("parsed");
        let Command::Send { to, data, .. } = cli.command else {
            panic!("not a send: {cli:?}");
        };
        assert_eq!(
            (to.clients, data.as_str()),
            (vec!["-J1x=".to_owned()], "hi")
        );
        let cli = Cli::try_parse_from(["gateway-client", "join", "-J1x=", "room"]).expect("parsed");
        assert!(
            matches!(cli.command, Command::Join { connection_id, .. } if connection_id == "-J1x=")
        );
        let cli =
            Cli::try_parse_from(["gateway-client", "kick", "--client", "-J1x="]).expect("parsed");
        assert!(
            matches!(cli.command, Command::Kick { who } if who.client.as_deref() == Some("-J1x="))
        );
    }

    #[tokio::test]
    async fn a_token_is_signed_with_the_current_key_of_the_secret_and_names_it() {
        let old = "the-previous-key-0123456789abcdefghij";
        let new = "the-current-key-0123456789abcdefghijk";
        let secret = json!({"kid": "2", "secret": new, "previous": [{"kid": "1", "secret": old}]})
            .to_string();
        let cli = Cli::try_parse_from(["gateway-client", "token", "alice", "--secret", &secret])
            .expect("parsed");
        let Command::Token(args) = cli.command else {
            panic!("not a token: {cli:?}");
        };
        let answer = token(&args).await.expect("a token");
        let minted = answer["token"].as_str().expect("a token");
        assert_eq!(shared::auth::key_id(minted).as_deref(), Some("2"));
        let verifier = shared::auth::Verifier::new(
            KeyRing::parse(&secret).unwrap(),
            "ws",
            std::time::Duration::from_secs(600),
        );
        assert_eq!(
            verifier.verify(minted).map(|(uid, _)| uid),
            Ok(Some("alice".into()))
        );
    }
}
