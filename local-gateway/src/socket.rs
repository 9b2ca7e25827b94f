//! One WebSocket connection, from the handshake to the close, as API Gateway runs it: `$connect`
//! decides whether the handshake succeeds, each text message is routed and invoked as it comes
//! (concurrently with the connection's other frames, as API Gateway invokes them), a binary frame
//! closes the connection with 1003, a message over the limit with 1009, and every close ends with
//! `$disconnect` — unless the gateway is told to drop a share of them, as API Gateway may.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::authorize::{authorize, Verdict};
use crate::connections::Outbound;
use crate::events::{self, Api, Client};
use crate::invoke::status_of;
use crate::routes::Selected;
use crate::Gateway;

const PAGE: &str = include_str!("page.html");

/// The chat page, told this gateway's limits, so that its client renews connections before the
/// lifetime ends and pings before the idle timeout, however short `make dev` made them.
fn page(limits: &crate::Limits) -> String {
    PAGE.replace(
        "{\"maxLifetimeMs\":7200000,\"idleTimeoutMs\":600000}",
        &format!(
            "{{\"maxLifetimeMs\":{},\"idleTimeoutMs\":{}}}",
            limits.max_lifetime.as_millis(),
            limits.idle_timeout.as_millis()
        ),
    )
}

/// `GET /{stage}`: as `/`, for this gateway's stage only; another stage is 403, as on AWS.
pub async fn staged_handshake(
    Path(stage): Path<String>,
    State(gateway): State<Arc<Gateway>>,
    peer: ConnectInfo<SocketAddr>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    headers: HeaderMap,
    query: RawQuery,
) -> Response {
    if stage != gateway.settings.stage {
        return (StatusCode::FORBIDDEN, "Forbidden: no such stage\n").into_response();
    }
    handshake(State(gateway), peer, upgrade, headers, query).await
}

/// `GET /`: a WebSocket handshake, or the chat page for a browser.
pub async fn handshake(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let Ok(upgrade) = upgrade else {
        return Html(page(&gateway.settings.limits)).into_response();
    };
    let settings = &gateway.settings;
    let api = Api {
        api_id: settings.api_id.clone(),
        stage: settings.stage.clone(),
        domain_name: headers
            .get("host")
            .and_then(|h| h.to_str().ok())
            .unwrap_or("127.0.0.1")
            .to_owned(),
    };
    let client = Client {
        connection_id: events::connection_id(),
        connected_at: events::now_millis(),
        source_ip: peer.ip().to_string(),
        user_agent: headers
            .get("user-agent")
            .and_then(|h| h.to_str().ok())
            .map(str::to_owned),
        authorizer: None,
    };
    // Registered before `$connect` runs, but unreachable until the handshake has completed: a
    // push that races the handshake is answered 410, as API Gateway answers it.
    let mut handshake = Handshake::begin(gateway.clone(), api, client);
    let (headers, query) = (header_map(&headers), query_map(query.as_deref()));
    if let Some(authorizer) = &settings.routes.authorizer {
        match authorize(
            &gateway,
            authorizer,
            &handshake.api,
            &handshake.client,
            &headers,
            &query,
        )
        .await
        {
            Verdict::Allow(context) => handshake.client.authorizer = Some(context),
            Verdict::Refuse(status) => {
                let body = format!("refused by the authorizer ({})\n", status.as_u16());
                return (status, body).into_response();
            }
        }
    }
    if let Some(function) = settings.routes.function("$connect") {
        let event = events::connect(&handshake.api, &handshake.client, &headers, &query);
        let id = &handshake.client.connection_id;
        let status = match gateway.invoker.invoke(function, &event).await {
            Ok(response) => status_of(&response),
            Err(e) => {
                tracing::error!(connection = %id, error = %e, "$connect failed");
                500
            }
        };
        if !(200..300).contains(&status) {
            tracing::info!(connection = %id, status, "handshake refused by $connect");
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return (
                status,
                format!("refused by $connect ({})\n", status.as_u16()),
            )
                .into_response();
        }
        handshake.accepted = true;
        // API Gateway takes a moment after `$connect` returns to establish the connection;
        // pushes meanwhile are answered 410. The handshake's answer waits that moment here too.
        tokio::time::sleep(settings.aws.connect_settle).await;
    }
    // Reachable before the client hears 101, as on AWS; what is pushed before the socket task
    // runs waits in the connection's channel.
    gateway
        .connections
        .established(&handshake.client.connection_id);
    tracing::info!(connection = %handshake.client.connection_id, source = %handshake.client.source_ip, "connected");
    let limits = settings.limits;
    upgrade
        .max_frame_size(limits.max_frame_bytes)
        .max_message_size(limits.max_message_bytes)
        .on_upgrade(move |socket| run(handshake, socket))
}

/// A connection from the start of its handshake until its socket runs. Dropped before that (the
/// client left during `$connect`, or the upgrade failed), it is forgotten, and one that
/// `$connect` had accepted gets its `$disconnect`, as API Gateway would send it.
struct Handshake {
    gateway: Arc<Gateway>,
    api: Api,
    client: Client,
    /// `$connect` accepted it (or there is no `$connect` route).
    accepted: bool,
    /// What is pushed to it; taken when its socket runs.
    outbound: Option<mpsc::UnboundedReceiver<Outbound>>,
}

impl Handshake {
    fn begin(gateway: Arc<Gateway>, api: Api, client: Client) -> Handshake {
        let outbound = Some(gateway.connections.open(client.clone()));
        let accepted = gateway.settings.routes.function("$connect").is_none();
        Handshake {
            gateway,
            api,
            client,
            accepted,
            outbound,
        }
    }
}

impl Drop for Handshake {
    fn drop(&mut self) {
        if self.outbound.is_none() {
            return;
        }
        self.gateway.connections.remove(&self.client.connection_id);
        if self.accepted {
            let close = Close {
                code: 1006,
                reason: "Connection lost during the handshake".into(),
            };
            let (gateway, api, client) =
                (self.gateway.clone(), self.api.clone(), self.client.clone());
            tokio::spawn(async move { disconnect(&gateway, &api, &client, close).await });
        }
    }
}

fn header_map(headers: &HeaderMap) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in headers {
        if let Ok(value) = value.to_str() {
            map.entry(title_case(name.as_str()))
                .or_default()
                .push(value.to_owned());
        }
    }
    map
}

/// `sec-websocket-key` → `Sec-WebSocket-Key`-ish, as API Gateway spells most headers.
fn title_case(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or_else(String::new, |c| {
                c.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect::<Vec<_>>()
        .join("-")
}

fn query_map(query: Option<&str>) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        map.entry(percent_decode(key))
            .or_default()
            .push(percent_decode(value));
    }
    map
}

fn percent_decode(text: &str) -> String {
    fn hex(byte: u8) -> Option<u8> {
        (byte as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            ) {
                (Some(high), Some(low)) => {
                    out.push(high << 4 | low);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            byte => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Why a connection ended, as `$disconnect` reports it.
struct Close {
    code: u16,
    reason: String,
}

async fn run(mut handshake: Handshake, socket: WebSocket) {
    let Some(mut outbound) = handshake.outbound.take() else {
        return;
    };
    let (gateway, api, client) = (
        handshake.gateway.clone(),
        handshake.api.clone(),
        handshake.client.clone(),
    );
    drop(handshake);
    let id = client.connection_id.clone();
    let limits = gateway.settings.limits;
    let (mut sink, mut stream) = socket.split();
    let born = Instant::now();
    let mut last_active = born;
    let close = loop {
        let deadline = (last_active + limits.idle_timeout).min(born + limits.max_lifetime);
        tokio::select! {
            pushed = outbound.recv() => match pushed {
                Some(Outbound::Text(text)) => {
                    if sink.send(Message::Text(text.into())).await.is_err() {
                        break Close { code: 1006, reason: "Connection lost".into() };
                    }
                }
                Some(Outbound::Binary(bytes)) => {
                    if sink.send(Message::Binary(bytes.into())).await.is_err() {
                        break Close { code: 1006, reason: "Connection lost".into() };
                    }
                }
                Some(Outbound::Close) | None => {
                    send_close(&mut sink, 1000, "Connection closed by the management API").await;
                    break Close { code: 1000, reason: "Connection deleted".into() };
                }
            },
            frame = stream.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    last_active = Instant::now();
                    gateway.connections.touch(&id, events::now_millis());
                    if gateway.settings.aws.serialize_frames {
                        deliver(&gateway, &api, &client, text.as_str()).await;
                    } else {
                        let (gateway, api, client) = (gateway.clone(), api.clone(), client.clone());
                        tokio::spawn(async move { deliver(&gateway, &api, &client, text.as_str()).await });
                    }
                }
                Some(Ok(Message::Binary(_))) => {
                    send_close(&mut sink, 1003, "Unsupported data: binary frames are not supported").await;
                    break Close { code: 1003, reason: "Unsupported data".into() };
                }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {
                    last_active = Instant::now();
                }
                Some(Ok(Message::Close(frame))) => {
                    break match frame {
                        Some(frame) => Close { code: frame.code, reason: frame.reason.to_string() },
                        None => Close { code: 1005, reason: "Client-side close frame status not set".into() },
                    };
                }
                Some(Err(e)) => {
                    let message = e.to_string();
                    let too_big = e.into_inner().downcast_ref::<tungstenite::Error>()
                        .is_some_and(|e| matches!(e, tungstenite::Error::Capacity(_)));
                    if too_big {
                        send_close(&mut sink, 1009, "Message too big").await;
                        break Close { code: 1009, reason: "Message too big".into() };
                    }
                    break Close { code: 1006, reason: format!("Connection lost: {message}") };
                }
                None => break Close { code: 1006, reason: "Connection lost".into() },
            },
            () = tokio::time::sleep_until(deadline) => {
                let (code, reason) = if Instant::now() >= born + limits.max_lifetime {
                    (1001, "Going away: the connection reached its maximum lifetime")
                } else {
                    (1001, "Going away: the connection was idle too long")
                };
                send_close(&mut sink, code, reason).await;
                break Close { code, reason: reason.into() };
            }
        }
    };
    disconnect(&gateway, &api, &client, close).await;
}

/// The connection has ended: it is forgotten, and `$disconnect` is invoked (unless dropped).
async fn disconnect(gateway: &Gateway, api: &Api, client: &Client, close: Close) {
    let id = &client.connection_id;
    gateway.connections.remove(id);
    tracing::info!(connection = %id, code = close.code, reason = %close.reason, "closed");
    if drops_disconnect(id, gateway.settings.aws.drop_disconnects_percent) {
        tracing::info!(connection = %id, "$disconnect dropped, as API Gateway may (--drop-disconnects)");
        return;
    }
    if let Some(function) = gateway.settings.routes.function("$disconnect") {
        let event = events::disconnect(api, client, close.code, &close.reason);
        if let Err(e) = gateway.invoker.invoke(function, &event).await {
            tracing::warn!(connection = %id, error = %e, "$disconnect failed");
        }
    }
}

/// Whether this connection's `$disconnect` is one of the dropped share: a hash of its id, so
/// that a share of 100 drops every one and 0 none.
fn drops_disconnect(connection_id: &str, percent: u8) -> bool {
    let hash = connection_id
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    hash % 100 < u32::from(percent)
}

async fn send_close(
    sink: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    code: u16,
    reason: &str,
) {
    let frame = CloseFrame {
        code,
        reason: reason.to_owned().into(),
    };
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        sink.send(Message::Close(Some(frame))),
    )
    .await;
}

/// Routes one message and invokes its function, answering as API Gateway does when no route fits
/// or the function fails. A route API Gateway answers itself (a MOCK integration) is answered
/// here, invoking nothing.
async fn deliver(gateway: &Gateway, api: &Api, client: &Client, body: &str) {
    let (route, function) = match gateway.settings.routes.select(body) {
        Some(Selected::Function { route, function }) => (route, function),
        Some(Selected::Mock { route, answer }) => {
            tracing::debug!(connection = %client.connection_id, route, "answered by the gateway (MOCK integration)");
            gateway
                .connections
                .answer(&client.connection_id, answer.to_owned());
            return;
        }
        None => {
            let error = json!({ "message": "Forbidden", "connectionId": client.connection_id, "requestId": events::request_id() });
            gateway
                .connections
                .answer(&client.connection_id, error.to_string());
            return;
        }
    };
    let event = events::message(api, client, route, body);
    if let Err(e) = gateway.invoker.invoke(function, &event).await {
        tracing::error!(connection = %client.connection_id, route, error = %e, "message route failed");
        let error = json!({ "message": "Internal server error", "connectionId": client.connection_id, "requestId": event["requestContext"]["requestId"] });
        gateway
            .connections
            .answer(&client.connection_id, error.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chat_page_is_told_the_gateways_limits() {
        let limits = crate::Limits {
            max_lifetime: std::time::Duration::from_secs(30),
            idle_timeout: std::time::Duration::from_secs(10),
            ..crate::Limits::default()
        };
        let page = page(&limits);
        assert!(
            page.contains(r#"const limits = {"maxLifetimeMs":30000,"idleTimeoutMs":10000};"#),
            "the page's limits were not replaced"
        );
    }

    #[test]
    fn query_strings_are_decoded() {
        let map = query_map(Some("uid=al%40ice&token=a.b.c&x=1+2&x=3"));
        assert_eq!(map["uid"], vec!["al@ice"]);
        assert_eq!(map["token"], vec!["a.b.c"]);
        assert_eq!(map["x"], vec!["1 2", "3"]);
    }

    #[test]
    fn a_stray_percent_is_kept() {
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }

    #[test]
    fn a_share_of_disconnects_is_dropped() {
        let ids: Vec<String> = (0..1000).map(|i| format!("conn{i}=")).collect();
        let dropped = |percent| {
            ids.iter()
                .filter(|id| drops_disconnect(id, percent))
                .count()
        };
        assert_eq!(dropped(0), 0);
        assert_eq!(dropped(100), 1000);
        assert!((400..600).contains(&dropped(50)), "{}", dropped(50));
    }

    #[test]
    fn header_names_are_title_cased() {
        assert_eq!(title_case("sec-websocket-key"), "Sec-Websocket-Key");
        assert_eq!(title_case("host"), "Host");
    }
}
