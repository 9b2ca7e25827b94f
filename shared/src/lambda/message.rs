//! Every message route: the size and rate limits, `on_message`, the session's save, the error
//! frames, and one log line per frame (its action and outcome, never its body).

use std::time::Instant;

use aws_lambda_events::apigw::ApiGatewayProxyResponse;

use crate::app::AppError;
use crate::app::{Client, Events};
use crate::app::{ErrorCode, Rejection};
use crate::error::Error;
use crate::gateway::ended::Cause;
use crate::gateway::rate_limit::{self, RateLimiter, Standing};
use crate::gateway::Gateway;
use crate::push::Push;

use super::on_close::then_close;
use super::request::{ids, millis, response, Event};

/// Every message route: drops a frame this environment knows to be over the rate limit, refuses
/// one over the size limit, hands the rest to the application ([`Events::on_message`]) while the
/// frame is counted against the sender's rate limit ([`crate::gateway::rate_limit`]: costly work waits
/// for the count), saves the session it changed, and answers a failure with an error frame.
#[tracing::instrument(name = "request", skip_all, fields(route = "message", connection_id, request_id, aws_request_id = %event.context.request_id))]
pub async fn handle<A: Events>(
    gateway: &Gateway,
    app: &A,
    event: Event,
) -> Result<ApiGatewayProxyResponse, Error> {
    let ids = ids(&event);
    ids.name_span();
    let work = async move {
        let started = Instant::now();
        let context = &event.payload.request_context;
        let body = event.payload.body.as_deref().unwrap_or("");
        let endpoint = match gateway.endpoint(context) {
            Ok(endpoint) => endpoint,
            Err(e) => {
                tracing::error!(
                    outcome = "failed",
                    error = %e,
                    "message dropped: nowhere to push replies",
                );
                return Err(e);
            }
        };
        let window = RateLimiter::window(&gateway.config);
        if let Some(window) = window.filter(|w| gateway.limiter.is_limited(&ids.connection_id, *w))
        {
            // Told once already (by whichever invocation counted it over): nothing is pushed. It
            // is still counted when going on closes the connection, or going on would cost nothing.
            let standing = match gateway.config.rate_close_multiple {
                0 => Standing::Uncounted,
                _ => rate_limit::count(gateway, &ids.connection_id, window).await,
            };
            if standing == Standing::Close {
                close_for_rate(gateway, &endpoint, &ids.connection_id).await;
            }
            let counted = match standing {
                Standing::Uncounted => "known over the limit here: dropped",
                counted => counted.as_str(),
            };
            tracing::info!(
                outcome = "rate_limited",
                bytes = body.len(),
                counted,
                duration_ms = millis(started.elapsed()),
                "message"
            );
            return Ok(response(200));
        }
        let mut client = Client::of_event(
            gateway,
            &ids.connection_id,
            &ids.request_id,
            &endpoint,
            context,
        );
        let limit = gateway.config.max_message_bytes;
        let answer = async {
            if body.len() > limit {
                return Err(AppError::from(Rejection::new(
                    ErrorCode::TooLarge,
                    format!("the message is {} bytes; the limit is {limit}", body.len()),
                    None,
                )));
            }
            match Box::pin(app.on_message(&mut client, body)).await {
                Ok(()) => Ok(client.save_session().await?),
                Err(e) => Err(e),
            }
        };
        let (standing, result) = match window {
            Some(window) => {
                Box::pin(rate_limit::counted(
                    gateway,
                    &ids.connection_id,
                    window,
                    answer,
                ))
                .await
            }
            None => (Standing::Uncounted, answer.await),
        };
        // The window's one `rate_limited` frame: from the first frame over the limit (or from
        // the one that closes the connection, when no frame over the limit came before it).
        let tells = standing == Standing::Crossed
            || (standing == Standing::Close && gateway.config.rate_close_multiple == 1);
        let mut told = false;
        let (outcome, refused_action) = match result {
            Ok(()) => ("ok", None),
            Err(error) if error.is_refusal() => {
                let rejection = error.rejection(client.action(), &ids.request_id);
                // Refused by the count (not by the application's own `rate_limited`): told
                // only by the window's first such frame.
                let by_count = rejection.code == ErrorCode::RateLimited && !standing.admits();
                if !by_count || tells {
                    if let Some(frame) = app.error_frame(&rejection) {
                        client.push_to_sender(&frame).await;
                    }
                    told |= by_count;
                }
                // The action a refused frame named, as the client wrote it: bounded, for the log.
                let named = rejection
                    .action
                    .as_deref()
                    .map(|a| a.chars().take(64).collect::<String>());
                (rejection_outcome(rejection.code), named)
            }
            Err(error) => {
                tracing::error!(action = client.action(), error = %error, "the frame failed");
                let rejection = error.rejection(client.action(), &ids.request_id);
                if let Some(frame) = app.error_frame(&rejection) {
                    client.push_to_sender(&frame).await;
                }
                ("internal", None)
            }
        };
        if tells && !told {
            // A cheap answer went out before the count was back: the window's one refusal still does.
            if let Some(frame) = app.error_frame(&rate_limit::refusal(&gateway.config)) {
                client.push_to_sender(&frame).await;
            }
        }
        if standing == Standing::Close {
            close_for_rate(gateway, &endpoint, &ids.connection_id).await;
        }
        let (replies, undelivered) = client.replies();
        tracing::info!(
            action = client.action().or(refused_action.as_deref()).unwrap_or("-"),
            outcome,
            bytes = body.len(),
            replies,
            undelivered,
            counted = standing.as_str(),
            duration_ms = millis(started.elapsed()),
            "message"
        );
        Ok(response(200))
    };
    then_close(gateway, app, work).await
}

/// Closes a connection that went on far past its rate limit, and ends it here (its groups told,
/// `on_close` run) rather than waiting for the `$disconnect` API Gateway sends best-effort.
async fn close_for_rate(gateway: &Gateway, endpoint: &str, connection_id: &str) {
    tracing::warn!(
        closed = %connection_id,
        "the connection sent more than {} times its rate limit in one window: closing it",
        gateway.config.rate_close_multiple,
    );
    match gateway.push.close(endpoint, connection_id).await {
        Ok(_) => {
            gateway
                .end(Some(endpoint), connection_id, Cause::Kicked)
                .await;
        }
        Err(e) => {
            tracing::error!(error = %e, "closing the connection failed; its frames are still dropped until the window ends")
        }
    }
}

fn rejection_outcome(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::UnknownAction => "unknown_action",
        ErrorCode::BadRequest => "bad_request",
        ErrorCode::TooLarge => "too_large",
        ErrorCode::RateLimited => "rate_limited",
        ErrorCode::Forbidden => "forbidden",
        ErrorCode::Internal => "internal",
    }
}
