//! One DynamoDB-compatible server per test binary, on a free loopback port: dynoxide (the
//! default) or moto (`DYNAMODB=moto`, to compare).
//!
//! dynoxide runs inside the test process, on a thread and a runtime of its own, so it lives
//! exactly as long as the tests that use it. moto is started through a small shell watchdog that
//! reads our end of a pipe: when the test process exits, however it exits, the pipe closes and the
//! watchdog stops the server, so no server outlives its tests. For moto, `MOTO_SERVER` names the
//! server to run: the Makefile sets `scripts/dynamodb-server.py`, moto answering one request at a
//! time; otherwise `moto_server` is looked up on PATH.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

struct Server {
    endpoint: String,
    /// moto's watchdog; dynoxide needs none.
    _watchdog: Option<Child>,
}

static SERVER: OnceLock<Server> = OnceLock::new();

/// A free port on 127.0.0.1 (the kernel's choice; released for the server to take), never one
/// handed out before in this process: the kernel may offer a released port again before its
/// first taker has bound it, and two stacks of one test binary then met on one port (a PHP
/// runner's events answered by another stack's `cargo lambda watch`).
pub fn free_port() -> u16 {
    static GIVEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    loop {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|listener| listener.local_addr())
            .map(|addr| addr.port())
            .expect("no free port on 127.0.0.1");
        if GIVEN
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(port)
        {
            return port;
        }
    }
}

/// Waits until something accepts TCP connections on `addr`.
pub fn wait_for_port(addr: SocketAddr, timeout: Duration, what: &str) {
    let deadline = Instant::now() + timeout;
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on {addr} within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The endpoint of this test binary's DynamoDB-compatible server, started on first use.
pub fn endpoint() -> &'static str {
    &SERVER.get_or_init(start).endpoint
}

/// Which server the tests run on, from `DYNAMODB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dynoxide,
    Moto,
}

impl Kind {
    /// `DYNAMODB` unset or `dynoxide` is dynoxide, `moto` is moto; anything else is a mistake
    /// worth stopping for.
    pub fn from_env() -> Kind {
        match std::env::var("DYNAMODB").as_deref() {
            Err(_) | Ok("") | Ok("dynoxide") => Kind::Dynoxide,
            Ok("moto") => Kind::Moto,
            Ok(other) => panic!("DYNAMODB={other}: set it to dynoxide (the default) or moto"),
        }
    }
}

fn start() -> Server {
    match Kind::from_env() {
        Kind::Dynoxide => start_dynoxide(),
        Kind::Moto => start_moto(),
    }
}

fn start_dynoxide() -> Server {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind for dynoxide");
    let addr = listener.local_addr().expect("dynoxide's address");
    local_dynamodb::spawn(listener).expect("start dynoxide");
    wait_for_port(addr, Duration::from_secs(10), "dynoxide");
    Server {
        endpoint: format!("http://{addr}"),
        _watchdog: None,
    }
}

fn start_moto() -> Server {
    let program = std::env::var("MOTO_SERVER").unwrap_or_else(|_| "moto_server".to_owned());
    let (endpoint, watchdog) = spawn_moto(&program, "moto");
    Server {
        endpoint,
        _watchdog: Some(watchdog),
    }
}

/// Starts moto's server `program` on a free loopback port behind a shell watchdog (when the test
/// process exits, however it exits, the pipe closes and the watchdog stops it), logging to
/// `{log_name}-{port}.log`, and waits until it listens: its endpoint and the watchdog.
pub(crate) fn spawn_moto(program: &str, log_name: &str) -> (String, Child) {
    let port = free_port();
    let script =
        r#""$0" -H 127.0.0.1 -p "$1" >"$2" 2>&1 & server=$!; cat >/dev/null; kill $server"#;
    let log = std::env::temp_dir().join(format!("{log_name}-{port}.log"));
    let mut watchdog = Command::new("sh")
        .args(["-c", script, program, &port.to_string()])
        .arg(&log)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("could not start {program}: {e}; run `make test`, which installs it")
        });
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + Duration::from_secs(60);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        if let Ok(Some(status)) = watchdog.try_wait() {
            let output = std::fs::read_to_string(&log).unwrap_or_default();
            panic!("{program} exited ({status}) before listening: {output}");
        }
        if Instant::now() > deadline {
            let output = BufReader::new(std::fs::File::open(&log).expect("moto log"))
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<_>>()
                .join("\n");
            panic!("{program} did not listen on {addr} within 60 s: {output}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    (format!("http://{addr}"), watchdog)
}
