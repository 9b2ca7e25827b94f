//! workerman-chat (walkor/workerman-chat, `Applications/Chat/Events.php`) on the Events API: chat
//! rooms whose page, unchanged, talks to API Gateway instead of a GatewayWorker.
//!
//! The protocol, as the chat's page speaks it (JSON frames with a `type`):
//! - `login` `{room_id, client_name}`: the name and room go into the session; the room hears
//!   `{type: login, client_id, client_name, time}`; the client joins the room and gets the same
//!   frame with `client_list` (connection id → name, itself included), built from the sessions of
//!   the room's members.
//! - `say` `{to_client_id, to_client_name, content}`: to `"all"`, the room gets
//!   `{type: say, from_client_id, from_client_name, to_client_id, content, time}`; to a connection
//!   id, that client gets it marked as said to them, and the sender a copy marked as said by them.
//! - `pong`: the page's answer to a server ping; nothing to do.
//! - When a client closes, its room hears `{type: logout, from_client_id, from_client_name, time}`.
//!
//! Names are HTML-escaped, and content HTML-escaped with its line breaks made `<br />`, because
//! the page inserts both as HTML. Times are UTC, `YYYY-MM-DD HH:MM:SS`.
//!
//! A frame it cannot read gets nothing, as from the PHP (its refusal is on the frame's log line).
//! What differs from the PHP: names are escaped once (the PHP escapes the login notice's twice), and no
//! server pings come (a Lambda has no timers; API Gateway closes a connection idle for 10 minutes,
//! and the page then reconnects and logs in again).

use serde::Deserialize;
use serde_json::{json, Value};
use shared::prelude::*;

/// The chat application; the three functions of `src/bin` hand it to the library.
#[derive(Clone, Copy, Debug, Default)]
pub struct Chat;

/// A frame from the chat's page.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Frame {
    Pong,
    Login {
        room_id: Option<Value>,
        client_name: Option<String>,
    },
    Say {
        to_client_id: String,
        #[serde(default)]
        to_client_name: String,
        content: String,
    },
}

const ROOM: &str = "room_id";
const NAME: &str = "client_name";

impl Events for Chat {
    async fn on_message(&self, client: &mut Client<'_>, frame: &str) -> Result<(), AppError> {
        let frame: Frame = serde_json::from_str(frame).map_err(|e| {
            AppError::bad_request(format!(
                "expected a JSON frame of type login, say or pong: {e}"
            ))
        })?;
        match frame {
            Frame::Pong => {
                client.set_action("pong");
                Ok(())
            }
            Frame::Login {
                room_id,
                client_name,
            } => {
                client.set_action("login");
                login(client, room_id, client_name.as_deref()).await
            }
            Frame::Say {
                to_client_id,
                to_client_name,
                content,
            } => {
                client.set_action("say");
                say(client, &to_client_id, &to_client_name, &content).await
            }
        }
    }

    /// Nothing: the PHP answers a frame it cannot carry out with silence, and the page has no
    /// use for an error frame. The refusal is still on the frame's log line.
    fn error_frame(&self, _: &Rejection) -> Option<String> {
        None
    }

    async fn on_close(&self, client: &Closing<'_>) -> Result<(), AppError> {
        let session = client.session();
        let (Some(room), Some(name)) = (text(session, ROOM), text(session, NAME)) else {
            return Ok(()); // it never logged in
        };
        let notice = json!({
            "type": "logout",
            "from_client_id": client.connection_id(),
            "from_client_name": name,
            "time": now(),
        });
        client.gateway().send_to_group(room, notice, &[]).await?;
        Ok(())
    }
}

async fn login(
    client: &mut Client<'_>,
    room: Option<Value>,
    name: Option<&str>,
) -> Result<(), AppError> {
    let room = match room {
        Some(Value::String(room)) => room,
        Some(Value::Number(room)) => room.to_string(),
        _ => return Err(AppError::bad_request("login needs a room_id")),
    };
    if !shared::names::is_valid_name(&room) {
        return Err(AppError::bad_request(format!(
            "{room:?} is not a room: use 1–128 of A-Z a-z 0-9 _ . : @ -"
        )));
    }
    let name = escape_html(name.unwrap_or_default());
    let gateway = client.gateway();
    let me = client.connection_id();
    // The name is saved and the room joined before anyone is read: of two users logging in at
    // once, each then either finds the other in its list or receives the other's notice (PHP's
    // order — read, tell, join — leaves a window in which neither happens).
    let mut saved = serde_json::Map::new();
    saved.insert(ROOM.into(), json!(room));
    saved.insert(NAME.into(), json!(name));
    if !gateway.update_session(me, &saved).await? || !gateway.join_group(me, &room).await? {
        return Err(AppError::msg(format!(
            "{me} has no record: it closed while logging in"
        )));
    }
    let members: serde_json::Map<String, Value> = gateway
        .client_sessions_by_group(&room)
        .await?
        .into_iter()
        .filter_map(|(id, session)| Some((id, session.get(NAME)?.clone())))
        .collect();

    let mut notice = json!({
        "type": "login",
        "client_id": me,
        "client_name": name,
        "time": now(),
    });
    gateway
        .send_to_group(&room, &notice, &[me.to_owned()])
        .await?;
    notice["client_list"] = Value::Object(members);
    client.send_to_current_client(notice).await?;
    Ok(())
}

async fn say(
    client: &mut Client<'_>,
    to: &str,
    to_name: &str,
    content: &str,
) -> Result<(), AppError> {
    let session = client.session().await?;
    let (Some(room), Some(name)) = (text(session, ROOM), text(session, NAME)) else {
        return Err(AppError::bad_request(
            "log in first: send a login frame with a room_id",
        ));
    };
    let (room, name) = (room.to_owned(), name.to_owned());
    let said = nl2br(&escape_html(content));
    let mut message = json!({
        "type": "say",
        "from_client_id": client.connection_id(),
        "from_client_name": name,
        "to_client_id": to,
        "content": said,
        "time": now(),
    });
    let gateway = client.gateway();
    if to == "all" {
        gateway.send_to_group(&room, message, &[]).await?;
        return Ok(());
    }
    if !shared::names::is_valid_connection_id(to) {
        return Err(AppError::bad_request(format!("{to:?} is not a client id")));
    }
    message["content"] = json!(format!("<b>对你说: </b>{said}"));
    gateway.send_to_client(to, &message).await?;
    message["content"] = json!(format!("<b>你对{}说: </b>{said}", escape_html(to_name)));
    client.send_to_current_client(message).await?;
    Ok(())
}

fn text<'a>(session: &'a Session, key: &str) -> Option<&'a str> {
    session.get(key)?.as_str()
}

fn now() -> String {
    time_at(shared::store::now_millis())
}

/// The time the page shows beside each line: UTC, `YYYY-MM-DD HH:MM:SS`.
fn time_at(epoch_millis: i64) -> String {
    let t = shared::civil::civil(epoch_millis);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

/// What PHP's `htmlspecialchars` does by default: `& < > " '` as entities.
fn escape_html(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#039;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// What PHP's `nl2br` does: `<br />` before each line break (`\r\n`, `\n\r`, `\n` or `\r`),
/// which stays.
fn nl2br(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\n' || c == '\r' {
            out.push_str("<br />");
            out.push(c);
            let pair = if c == '\n' { '\r' } else { '\n' };
            if let Some(next) = chars.next_if_eq(&pair) {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_escaped_as_htmlspecialchars_escapes_them() {
        assert_eq!(
            escape_html(r#"<b>"Tom" & 'Jerry'</b>"#),
            "&lt;b&gt;&quot;Tom&quot; &amp; &#039;Jerry&#039;&lt;/b&gt;"
        );
    }

    #[test]
    fn each_line_break_gets_one_br_before_it() {
        assert_eq!(
            nl2br("a\nb\r\nc\n\rd\re"),
            "a<br />\nb<br />\r\nc<br />\n\rd<br />\re"
        );
        assert_eq!(nl2br("\n\n"), "<br />\n<br />\n");
    }

    #[test]
    fn times_read_as_the_page_shows_them() {
        assert_eq!(time_at(0), "1970-01-01 00:00:00");
        assert_eq!(time_at(1_764_599_045_123), "2025-12-01 14:24:05");
    }
}
