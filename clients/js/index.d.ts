// Types of chat-client (hand-written; the code is plain JavaScript in src/).

/** A stored message (SPEC section 3). `id` is a string: 64-bit ids do not fit a JS number. */
export interface Message {
  id: string;
  channel_id: number;
  seq: number;
  sender_id: number;
  sender: string;
  content: string;
  reply_to: number | null;
  client_msg_id: string | null;
  created_at: string;
  /** Present when the message carries files. */
  attachments?: Attachment[];
}

/** A file uploaded to a channel (`Rest#uploadAttachment`), as messages carry it. */
export interface Attachment {
  id: string;
  name: string;
  size: number;
  content_type: string;
  /** `/api/attachments/{id}`: members only (`Rest#download`). */
  url: string;
  /** A picture's thumbnail (PNG, JPEG, GIF, WebP; fits 320x320), members only (`Rest#download`). */
  thumbnail_url?: string;
}

/** A sequenced change to a message of a channel (`{"type":"event","event":{...}}`): it
 * carries the state it leaves (the new content, the emoji's count now, the reply count now). */
export interface ChangeEvent {
  channel_id: number;
  /** Its place in the channel's seq stream, shared with messages. */
  seq: number;
  message_id: string;
  message_seq: number;
  user_id: number;
  client_msg_id: string | null;
  created_at: string;
  kind: 'message_edited' | 'message_deleted' | 'reaction_added' | 'reaction_removed' | 'thread_updated';
  content?: string;
  edited_at?: string;
  emoji?: string;
  count?: number;
  reply_count?: number;
  last_reply_at?: string;
}

export interface User {
  id: number;
  username: string;
  created_at: string;
}

export interface UserPresence {
  id: number;
  username: string;
  online: boolean;
}

export interface Channel {
  id: number;
  name: string;
  kind: 'group' | 'direct';
  created_by: number | null;
  last_seq: number;
  created_at: string;
}

/** One of the caller's channels, with read state. */
export interface MyChannel {
  id: number;
  name: string;
  kind: 'group' | 'direct';
  last_seq: number;
  last_read_seq: number;
  unread: number;
  /** Unread messages that name the user. */
  mentions: number;
}

export interface ReadyFrame {
  type: 'ready';
  session_id: string;
  user: User;
  edge: string;
  channels: MyChannel[];
}

export interface TypingFrame {
  type: 'typing';
  channel_id: number;
  user_id: number;
  username: string;
}

export interface ReadFrame {
  type: 'read';
  channel_id: number;
  user_id: number;
  seq: number;
}

export interface PresenceFrame {
  type: 'presence';
  user_id: number;
  status: 'online' | 'offline';
}

export interface MemberJoinedFrame {
  type: 'member_joined';
  channel_id: number;
  user_id: number;
  username: string;
}

export interface MemberLeftFrame {
  type: 'member_left';
  channel_id: number;
  user_id: number;
}

export interface ChannelAddedFrame {
  type: 'channel_added';
  channel: MyChannel;
}

export interface ChannelRemovedFrame {
  type: 'channel_removed';
  channel_id: number;
}

export interface ResumeTruncatedFrame {
  type: 'resume_truncated';
  channel_id: number;
  next_seq: number;
}

/** Any server frame, as received. */
export interface Frame {
  type: string;
  [field: string]: unknown;
}

/** `connecting` until the first `ready`; `reconnecting` after a drop until the next one;
 * `closed` after `close()`, an `auth` event, or a close code that is not retried. */
export type State = 'connecting' | 'ready' | 'reconnecting' | 'closed';

export interface StateInfo {
  code?: number;
  reason?: string;
}

export interface AuthEvent {
  /** `expired`: close 4001 on an open socket; `invalid`: the handshake was refused and
   * `GET /api/me` answered 401 with the same token. */
  reason: 'expired' | 'invalid';
  code?: number;
}

export interface BackoffOptions {
  /** Ceiling of the first wait (250 ms); doubles per failed attempt. */
  baseMs?: number;
  /** Largest ceiling (10 s). */
  maxMs?: number;
  /** Source of jitter in [0, 1) (Math.random). */
  random?: () => number;
}

export interface ClientOptions {
  /** The WebSocket class (default: the global one; Node 20 needs --experimental-websocket). */
  WebSocket?: new (url: string, protocols?: string | string[]) => WebSocket;
  /** The fetch used by `client.rest` and the auth check (default: the global one). */
  fetch?: typeof fetch;
  backoff?: BackoffOptions;
  /** A socket without `ready` after this long is given up and retried (15 s). */
  connectTimeoutMs?: number;
  /** A socket silent this long gets a `ping` (25 s). */
  pingIntervalMs?: number;
  /** ... and is given up when still silent this much later (10 s). */
  pongTimeoutMs?: number;
  /** A hole in a channel's seqs not filled after this long is asked for again with `resume` (5 s). */
  gapResumeMs?: number;
  /** Resend requests refused with `rate_limited` after `retry_after_ms` (true). */
  retryRateLimited?: boolean;
}

export interface SendOptions {
  replyTo?: number | null;
  /** The idempotency key (default: a fresh one per call). */
  clientMsgId?: string;
  /** Ids of files uploaded to the channel (`Rest#uploadAttachment`), at most 10. */
  attachments?: string[];
}

export interface RequestOptions {
  /** The request's client id (default: a fresh one per call). */
  clientId?: string;
}

export declare class ChatError extends Error {
  /** The server's code (`validation`, `forbidden`, ...), or `closed`, `too_large`, `bad_frame`. */
  code: string;
  retryAfterMs?: number;
  frame?: Frame;
}

export declare class HttpError extends Error {
  status: number;
  code: string;
  retryAfterMs?: number;
  body: unknown;
}

type Listener<T extends unknown[]> = (...args: T) => void;

export interface ClientEvents {
  state: [State, StateInfo];
  ready: [ReadyFrame];
  /** Every message of the user's channels, once, in seq order per channel. */
  message: [Message];
  /** Every change to a message (edit, delete, reaction, thread counters), once, in the same
   * seq order as the messages of its channel. */
  event: [ChangeEvent];
  typing: [TypingFrame];
  read: [ReadFrame];
  presence: [PresenceFrame];
  member_joined: [MemberJoinedFrame];
  member_left: [MemberLeftFrame];
  channel_added: [ChannelAddedFrame];
  channel_removed: [ChannelRemovedFrame];
  resume_truncated: [ResumeTruncatedFrame];
  resumed: [Frame];
  /** The token expired or was refused: log in again and call `setToken`. */
  auth: [AuthEvent];
  /** An `error` frame answering no pending request, or an unreadable frame. */
  error: [ChatError];
  /** A socket ended (before any reconnect). */
  disconnect: [{ code: number; reason: string }];
  /** Every server frame, as received (before ordering). */
  frame: [Frame];
}

export declare class ChatClient {
  constructor(url: string, token: string, options?: ClientOptions);
  readonly state: State;
  /** The last `ready` frame. */
  readonly session: ReadyFrame | null;
  readonly rest: Rest;
  token: string;

  on<E extends keyof ClientEvents>(event: E, fn: Listener<ClientEvents[E]>): () => void;
  /** Frames of other types (e.g. the server's edit, delete and reaction events), by `type`. */
  on(event: string, fn: (frame: Frame) => void): () => void;
  once<E extends keyof ClientEvents>(event: E, fn: Listener<ClientEvents[E]>): () => void;
  once(event: string, fn: (frame: Frame) => void): () => void;
  off(event: string, fn: Function): void;

  open(): void;
  close(): void;
  setToken(token: string): void;
  ready(): Promise<ReadyFrame>;
  lastSeq(channelId: number): number | undefined;
  newId(): string;

  /** Any request answered by `ack`/`error` with the same client id; resolves with the ack's `message`. */
  request<T = Message>(frame: Record<string, unknown>): Promise<T>;
  send(channelId: number, content: string, options?: SendOptions): Promise<Message>;
  /** Needs the server's `edit` frame. */
  edit(channelId: number, messageId: string, content: string, options?: RequestOptions): Promise<Message>;
  /** Needs the server's `delete` frame. */
  delete(channelId: number, messageId: string, options?: RequestOptions): Promise<Message>;
  /** Needs the server's `react` frame. */
  react(channelId: number, messageId: string, emoji: string, options?: RequestOptions): Promise<Message>;
  /** Needs the server's `unreact` frame. */
  unreact(channelId: number, messageId: string, emoji: string, options?: RequestOptions): Promise<Message>;
  typing(channelId: number): void;
  markRead(channelId: number, seq: number): void;
}

/** Creates a client and starts connecting. `url`: `http://host:8080` or `ws://host:8080/ws`. */
export declare function connect(url: string, token: string, options?: ClientOptions): ChatClient;

export declare class Rest {
  constructor(url?: string, options?: { token?: string; fetch?: typeof fetch });
  base: string;
  token?: string;
  request<T = unknown>(method: string, path: string, body?: unknown): Promise<T>;
  register(username: string, password: string): Promise<User>;
  login(username: string, password: string): Promise<{ token: string; expires_at: string; user: User }>;
  me(): Promise<User>;
  users(options?: { online?: boolean; after?: number; limit?: number }): Promise<{ users: UserPresence[]; next: number | null }>;
  channels(options?: { after?: number; limit?: number }): Promise<{ channels: Channel[]; next: number | null }>;
  myChannels(): Promise<MyChannel[]>;
  createChannel(name: string): Promise<Channel>;
  join(channelId: number): Promise<MyChannel>;
  leave(channelId: number): Promise<null>;
  members(channelId: number): Promise<UserPresence[]>;
  dm(userId: number): Promise<Channel>;
  history(
    channelId: number,
    options?: { before?: number; after?: number; limit?: number },
  ): Promise<{ messages: Message[]; next: number | null }>;
  pages(channelId: number, options?: { before?: number; after?: number; limit?: number }): AsyncGenerator<Message[]>;
  sendMessage(channelId: number, content: string, options?: SendOptions): Promise<Message>;
  markRead(channelId: number, seq: number): Promise<{ channel_id: number; last_read_seq: number }>;
  uploadAttachment(channelId: number, data: Blob | ArrayBuffer | Uint8Array | string, name: string): Promise<Attachment>;
  download(idOrUrl: string): Promise<ArrayBuffer>;
}

export declare function endpoints(url?: string): { http: string; ws: string };

export declare class Backoff {
  constructor(options?: BackoffOptions);
  next(): number;
  reset(): void;
  ceiling(): number;
}

export declare class ChannelTrack {
  constructor(last: number);
  last: number;
  accept(entry: Message | ChangeEvent): (Message | ChangeEvent)[];
  hasGap(): boolean;
}

export declare class Tracks {
  onReady(channels: MyChannel[]): Record<string, number>;
  add(channelId: number, lastSeq: number): void;
  remove(channelId: number): void;
  accept(entry: Message | ChangeEvent): (Message | ChangeEvent)[];
  last(channelId: number): number | undefined;
  gaps(): Record<string, number>;
}

/** The field carrying a request's client id (`client_msg_id`). */
export declare const ID_FIELD: string;
