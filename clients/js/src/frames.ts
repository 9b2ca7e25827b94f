// The frames the service sends and the commands it takes (docs/protocol.md).

/** A place in a group's stream: the stream's epoch and a message's offset in it. */
export interface Position {
  epoch: string;
  offset: number;
}

/** Who a message or a presence event is about. */
export interface Peer {
  connectionId: string;
  uid: string | null;
}

/** Exactly one key: where a `send` goes. */
export type Target =
  | { connectionId: string }
  | { connectionIds: string[] }
  | { uid: string }
  | { uids: string[] }
  | { group: string }
  | { groups: string[] }
  | { all: true };

/** A message, as pushed. One sent to exactly one group carries the group and its place in it. */
export interface Message {
  type: "message";
  from: Peer;
  to: Target;
  data: unknown;
  group?: string;
  epoch?: string;
  offset?: number;
}

/** A message of a group's stream: it has a place, and the client orders and recovers it. */
export interface GroupMessage extends Message {
  group: string;
  epoch: string;
  offset: number;
}

export interface Joined {
  type: "joined";
  group: string;
  /** Where the group's stream was when the join landed (absent before its first message). */
  epoch?: string;
  offset?: number;
  /** For a join with presence, in a group within the service's limit. */
  members?: Peer[];
  /** For a join with presence, in a group over the limit: no members, no events. */
  presenceLimit?: number;
  /** For a join with presence: the presence version `members` is as of (absent from older servers). */
  version?: number;
}

export interface Left {
  type: "left";
  group: string;
}

export interface History {
  type: "history";
  group: string;
  epoch: string;
  offset: number;
  recovered: boolean;
  messages: GroupMessage[];
  /** Offsets in the span answered whose sends failed before keeping them: delivered to nobody. */
  skipped?: number[];
  more: boolean;
}

/**
 * Someone joined or left a group this client follows (joined with `presence: true`). `version`
 * (absent from older servers) grows per group: as of `version`, the connection is a member (join)
 * or is not (leave). Events may arrive in any order; the client drops stale ones.
 */
export interface PresenceEvent {
  type: "presence";
  event: "join" | "leave";
  group: string;
  connectionId: string;
  uid: string | null;
  version?: number;
}

/** The group grew past the service's presence limit: no more events for it, and no list. */
export interface PresenceOverflow {
  type: "presence";
  event: "overflow";
  group: string;
}

/** The answer to `presence()`: a count, never a list. */
export interface PresenceCount {
  type: "presence";
  group?: string;
  connections: number;
  uids: string[];
}

export interface Whoami {
  type: "whoami";
  connectionId: string;
  uid: string | null;
  groups: string[];
}

/**
 * A send's ack. `group`, `epoch` and `offset`: where the message took its place in a group's
 * stream (a send to exactly one group, also one that excluded the sender).
 */
export interface Ack {
  type: "ack";
  id: string;
  delivered: number;
  group?: string;
  epoch?: string;
  offset?: number;
}

export type ErrorCode =
  | "unknown_action"
  | "bad_request"
  | "too_large"
  | "forbidden"
  | "rate_limited"
  | "internal";

export interface ErrorFrame {
  type: "error";
  code: ErrorCode;
  message: string;
  action?: string;
  /** The `id` of the `send` refused or failed in part. */
  id?: string;
}

export interface Pong {
  type: "pong";
}

/** Every JSON frame the service sends. */
export type Frame =
  | Message
  | Joined
  | Left
  | History
  | PresenceEvent
  | PresenceOverflow
  | PresenceCount
  | Whoami
  | Ack
  | ErrorFrame
  | Pong;

/** Whether a message belongs to a group's stream. */
export function isGroupMessage(message: Message): message is GroupMessage {
  return (
    typeof message.group === "string" &&
    typeof message.epoch === "string" &&
    typeof message.offset === "number"
  );
}

/** A frame's JSON, or `null` for a frame that is not a JSON object with a string `type`. */
export function parseFrame(text: string): Frame | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) return null;
  return typeof (value as { type?: unknown }).type === "string" ? (value as Frame) : null;
}
