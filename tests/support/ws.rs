//! A real WebSocket client, as a browser or `wscat` is to the gateway: it sends text, binary and
//! fragmented frames, reads what the server pushes, and sees how the server closed.

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::local_stack::PATIENCE;

/// Connects a real WebSocket client to `url`, any gateway's (a running `make dev`, say).
pub async fn connect(url: &str) -> Ws {
    match try_connect(url).await {
        Ok(ws) => ws,
        Err(status) => panic!("the handshake with {url} was refused with {status}"),
    }
}

/// Connects, or returns the HTTP status that refused the handshake.
pub async fn try_connect(url: &str) -> Result<Ws, u16> {
    match tokio::time::timeout(PATIENCE, tokio_tungstenite::connect_async(url)).await {
        Ok(Ok((socket, _))) => Ok(Ws {
            socket,
            connection_id: String::new(),
        }),
        Ok(Err(tungstenite::Error::Http(response))) => Err(response.status().as_u16()),
        Ok(Err(e)) => panic!("could not connect to {url}: {e}"),
        Err(_) => panic!("no handshake from {url} within {PATIENCE:?}"),
    }
}

/// A real WebSocket client.
pub struct Ws {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub connection_id: String,
}

/// How a connection ended, as the client saw it.
#[derive(Debug, PartialEq, Eq)]
pub struct Closed {
    pub code: u16,
    pub reason: String,
}

impl Ws {
    pub async fn send(&mut self, text: &str) {
        self.socket
            .send(Message::text(text))
            .await
            .expect("send a frame");
    }

    /// Sends `text` as one message cut into frames of `frame_bytes`.
    pub async fn send_fragmented(&mut self, text: &str, frame_bytes: usize) {
        use tungstenite::protocol::frame::coding::{Data, OpCode};
        use tungstenite::protocol::frame::Frame;
        let chunks: Vec<&[u8]> = text.as_bytes().chunks(frame_bytes).collect();
        for (i, chunk) in chunks.iter().enumerate() {
            let opcode = OpCode::Data(if i == 0 { Data::Text } else { Data::Continue });
            let frame = Frame::message(chunk.to_vec(), opcode, i + 1 == chunks.len());
            self.socket
                .send(Message::Frame(frame))
                .await
                .expect("send a fragment");
        }
    }

    pub async fn send_binary(&mut self, bytes: &[u8]) {
        self.socket
            .send(Message::binary(bytes.to_vec()))
            .await
            .expect("send a binary frame");
    }

    /// The next text frame.
    pub async fn recv(&mut self) -> String {
        loop {
            match tokio::time::timeout(PATIENCE, self.socket.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => return text.to_string(),
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
                Ok(other) => panic!(
                    "{}: expected a text frame, got {other:?}",
                    self.connection_id
                ),
                Err(_) => panic!("{}: no frame within {PATIENCE:?}", self.connection_id),
            }
        }
    }

    /// The next text frame, as JSON.
    pub async fn recv_json(&mut self) -> serde_json::Value {
        let text = self.recv().await;
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text} is not JSON: {e}"))
    }

    /// The next `count` text frames as JSON, in whatever order they came.
    pub async fn recv_json_n(&mut self, count: usize) -> Vec<serde_json::Value> {
        let mut frames = Vec::with_capacity(count);
        for _ in 0..count {
            frames.push(self.recv_json().await);
        }
        frames
    }

    /// Proves nothing else is queued for this client: a ping's pong must be the next frame.
    /// Call it once every frame this client sent has been answered: the gateway invokes a
    /// connection's frames concurrently, so only pushes already made come before the pong.
    pub async fn expect_nothing_pending(&mut self) {
        self.expect_nothing_before(r#"{"action":"ping"}"#, |answer| {
            *answer == serde_json::json!({"type":"pong"})
        })
        .await;
    }

    /// [`Ws::expect_nothing_pending`] for any application: `probe`'s answer, which `is_answer`
    /// recognises, must be the next frame.
    pub async fn expect_nothing_before(
        &mut self,
        probe: &str,
        is_answer: impl Fn(&serde_json::Value) -> bool,
    ) {
        self.send(probe).await;
        let next = self.recv_json().await;
        assert!(
            is_answer(&next),
            "{} had a frame pending: {next}",
            self.connection_id
        );
    }

    /// Waits for the server to close the connection.
    pub async fn closed(&mut self) -> Closed {
        self.frames_until_closed().await.1
    }

    /// Waits for the server to close the connection: the text frames that came before, and how
    /// it closed.
    pub async fn frames_until_closed(&mut self) -> (Vec<String>, Closed) {
        let mut frames = Vec::new();
        let closed = loop {
            match tokio::time::timeout(PATIENCE, self.socket.next()).await {
                Ok(Some(Ok(Message::Close(frame)))) => {
                    break frame.map_or(
                        Closed {
                            code: 1005,
                            reason: String::new(),
                        },
                        |f| Closed {
                            code: u16::from(f.code),
                            reason: f.reason.to_string(),
                        },
                    )
                }
                Ok(Some(Ok(Message::Text(text)))) => frames.push(text.to_string()),
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(e))) => panic!(
                    "{}: the connection failed instead of closing: {e}",
                    self.connection_id
                ),
                Ok(None) => {
                    break Closed {
                        code: 1006,
                        reason: "no close frame".into(),
                    }
                }
                Err(_) => panic!("{}: not closed within {PATIENCE:?}", self.connection_id),
            }
        };
        (frames, closed)
    }

    /// Closes the connection normally.
    pub async fn close(mut self) {
        let _ = self
            .socket
            .close(Some(tungstenite::protocol::CloseFrame {
                code: CloseCode::Normal,
                reason: "bye".into(),
            }))
            .await;
        while let Ok(Some(Ok(_))) = tokio::time::timeout(PATIENCE, self.socket.next()).await {}
    }
}
