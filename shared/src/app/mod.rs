//! What an application is written against: the [`Events`] it implements, the context each hook
//! gets ([`Connecting`], [`Client`], [`Closing`]), the [`AppError`] it returns, what a send takes
//! ([`Payload`], [`Json`]), and the [`Rejection`] a refused frame is told with.

mod app_error;
mod client;
mod closing;
mod connecting;
mod events;
mod payload;
mod rejection;

pub use app_error::AppError;
pub use client::Client;
pub use closing::Closing;
pub use connecting::Connecting;
pub use events::{Events, Verdict};
pub use payload::{Json, Payload};
pub use rejection::{ErrorCode, Rejection};
