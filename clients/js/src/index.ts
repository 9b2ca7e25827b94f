// serverless-ws-client: the client of this service's WebSocket API (docs/protocol.md).
export { Client, connect } from "./client.js";
export type {
  CallOptions,
  ClientEvents,
  ClientOptions,
  ConnectionState,
  JoinOptions,
  SendOptions,
  StateReason,
} from "./client.js";
export { RequestError } from "./link.js";
export type { FailureCode, SocketLike, WebSocketConstructor } from "./link.js";
export { UnauthorizedError } from "./token.js";
export type { EventTargetLike } from "./wake.js";
export type { RateLimit } from "./pacing.js";
export { GroupStream } from "./stream.js";
export { backoffDelay } from "./backoff.js";
export type { BackoffOptions } from "./backoff.js";
export type * from "./frames.js";
export { isGroupMessage } from "./frames.js";
