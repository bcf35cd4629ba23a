// One chat session across sockets (SPEC section 4): connect, reconnect with backoff and full
// jitter, `resume` from the last delivered seq per channel, messages once and in seq order,
// requests (`send`, and `edit`/`delete`/`react`/`unreact`) resent with the same client id until
// answered, and the session's state as events.

import { Backoff } from './backoff.js';
import { Emitter } from './emitter.js';
import { ChatError, HttpError } from './errors.js';
import { ID_FIELD, Requests } from './requests.js';
import { Rest, endpoints } from './rest.js';
import { Tracks } from './tracks.js';

/**
 * Close codes after which the client reconnects and resumes: going away, no status, abnormal
 * (a dropped connection or a killed edge), internal error, edge restarting (drain), slow
 * consumer. 4001 (token expired) never reconnects; any other code closes the client.
 */
const RECONNECT_CODES = new Set([1001, 1005, 1006, 1011, 1012, 4008]);
const TOKEN_EXPIRED = 4001;
/** The server's default frame limit (SPEC 6): a bigger request is refused locally. */
const MAX_FRAME_BYTES = 64 * 1024;
/** Wait before resending a request refused with `rate_limited` without `retry_after_ms`. */
const DEFAULT_RETRY_MS = 100;

const OPEN = 1;
/** Events of the client itself, never the name of a forwarded frame. */
const OWN_EVENTS = new Set(['state', 'auth', 'disconnect', 'frame']);

/**
 * Creates a client and starts connecting (on the next microtask, so listeners attached right
 * after this call see the first `state` event).
 * @param {string} url the deployment, `http://host:8080` or `ws://host:8080/ws`
 * @param {string} token a JWT from `POST /api/login`
 * @param {import('../index.d.ts').ClientOptions} [options]
 */
export function connect(url, token, options) {
  const client = new ChatClient(url, token, options);
  queueMicrotask(() => client.open());
  return client;
}

export class ChatClient extends Emitter {
  /**
   * @param {string} url
   * @param {string} token
   * @param {import('../index.d.ts').ClientOptions} [opts]
   */
  constructor(url, token, opts = {}) {
    super();
    const ends = endpoints(url);
    this.url = ends.ws;
    this.token = token;
    this.WebSocket = opts.WebSocket ?? globalThis.WebSocket;
    if (!this.WebSocket) {
      throw new TypeError('no WebSocket: pass options.WebSocket, or run Node 20 with --experimental-websocket');
    }
    this.rest = new Rest(ends.http, { token, fetch: opts.fetch });
    this.backoff = new Backoff(opts.backoff);
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 15_000;
    this.pingIntervalMs = opts.pingIntervalMs ?? 25_000;
    this.pongTimeoutMs = opts.pongTimeoutMs ?? 10_000;
    this.gapResumeMs = opts.gapResumeMs ?? 5_000;
    this.retryRateLimited = opts.retryRateLimited ?? true;
    /** @type {import('../index.d.ts').State} */
    this.state = 'connecting';
    /** The last `ready` frame (user, edge, session_id, channels). */
    this.session = null;
    this.tracks = new Tracks();
    this.requests = new Requests();
    /** Read markers written while no socket was ready: channel -> seq. */
    this._reads = new Map();
    /** Channels whose last `resume` was cut short (`resume_truncated`). */
    this._truncated = new Set();
    this._idPrefix = `js-${Math.random().toString(36).slice(2, 10)}-`;
    this._ids = 0;
    this._sock = null;
    this._everReady = false;
    this._opening = false;
    this._closed = false;
    this._authFailed = false;
    this._timers = { reconnect: null, connect: null, ping: null, gap: null };
    this._lastFrameAt = 0;
  }

  // ---- lifecycle -------------------------------------------------------------------------

  /** Opens a socket (called by `connect`; again by the reconnect loop). */
  open() {
    if (this._closed || this._authFailed || this._sock) return;
    // The first call announces `connecting` even though the client starts in that state.
    this._setState(this._everReady ? 'reconnecting' : 'connecting', {}, !this._opening);
    this._opening = true;
    let ws;
    try {
      ws = new this.WebSocket(`${this.url}?token=${encodeURIComponent(this.token)}`);
    } catch (e) {
      this._closed = true;
      this._setState('closed', { reason: String(e) });
      return;
    }
    const sock = { ws, opened: false };
    this._sock = sock;
    this._timers.connect = setTimeout(() => this._drop(sock, 'no ready in time'), this.connectTimeoutMs);
    ws.onopen = () => {
      sock.opened = true;
    };
    ws.onmessage = (ev) => {
      if (this._sock === sock) this._onData(ev.data);
    };
    // A failed handshake (refused token, network error) fires `error`; browsers follow it
    // with `close`, Node 20's WebSocket does not. An open socket's `error` is followed by its
    // `close`, which is given a moment before the socket is given up.
    ws.onerror = () => {
      if (!sock.opened) this._onClose(sock, 1006, 'connection failed');
      else setTimeout(() => this._drop(sock, 'error without close'), 1000);
    };
    ws.onclose = (ev) => this._onClose(sock, ev.code, ev.reason);
  }

  /** Closes the client for good; pending requests are rejected with code `closed`. */
  close() {
    if (this._closed) return;
    this._closed = true;
    const sock = this._sock;
    this._stopSocket();
    if (sock) sock.ws.close(1000);
    this._setState('closed', { code: 1000, reason: 'closed by the client' });
    this.requests.rejectAll(new ChatError('closed', 'the client was closed'));
  }

  /**
   * Replaces the token (after logging in again). A client closed by an `auth` event connects
   * again with it, keeping its pending requests and its place in every channel.
   * @param {string} token
   */
  setToken(token) {
    this.token = token;
    this.rest.token = token;
    if (this._authFailed && !this._closed) {
      this._authFailed = false;
      this.backoff.reset();
      this.open();
    }
  }

  /** Resolves with the `ready` frame once the client is ready; rejects once it is closed. */
  ready() {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.state === 'ready') {
          off();
          resolve(this.session);
        } else if (this.state === 'closed') {
          off();
          reject(new ChatError(this._authFailed ? 'unauthorized' : 'closed', 'the client is closed'));
        }
      };
      const off = this.on('state', check);
      check();
    });
  }

  /** The last seq delivered in `channelId` (undefined for a channel not tracked). */
  lastSeq(channelId) {
    return this.tracks.last(channelId);
  }

  // ---- requests --------------------------------------------------------------------------

  /** A fresh client id: unique per client instance, printable ASCII, no spaces. */
  newId() {
    this._ids += 1;
    return this._idPrefix + this._ids;
  }

  /**
   * Writes a request frame now (or once ready) and again after every reconnect, with the same
   * client id, until an `ack` (resolves with its `message`) or an `error` (rejects with a
   * `ChatError`). A `rate_limited` refusal is resent after the server's `retry_after_ms`.
   * @param {Record<string, unknown>} frame
   * @returns {Promise<any>}
   */
  request(frame) {
    if (this._closed) return Promise.reject(new ChatError('closed', 'the client was closed'));
    const f = { ...frame };
    if (f[ID_FIELD] == null) f[ID_FIELD] = this.newId();
    if (new TextEncoder().encode(JSON.stringify(f)).length > MAX_FRAME_BYTES) {
      return Promise.reject(new ChatError('too_large', `frame above ${MAX_FRAME_BYTES} bytes`));
    }
    const answered = this.requests.add(f);
    if (this.state === 'ready') this._write(f);
    return answered;
  }

  /**
   * Sends a message; resolves with the stored message (SPEC 3) once committed.
   * @param {number} channelId
   * @param {string} content
   * @param {{replyTo?: number | null, clientMsgId?: string, attachments?: string[]}} [opts]
   *   `attachments`: ids of files uploaded to the channel (`Rest#uploadAttachment`)
   */
  send(channelId, content, { replyTo, clientMsgId, attachments } = {}) {
    const frame = { type: 'send', channel_id: channelId, content, reply_to: replyTo ?? null, [ID_FIELD]: clientMsgId };
    if (attachments?.length) frame.attachments = attachments;
    return this.request(frame);
  }

  // The four below need the server's edit/delete/reaction frames (answered by `ack`/`error`
  // like `send`; the changes reach members as their own event frames, emitted by type).

  /**
   * @param {number} channelId
   * @param {string} messageId
   * @param {string} content
   * @param {{clientId?: string}} [opts]
   */
  edit(channelId, messageId, content, { clientId } = {}) {
    return this.request({ type: 'edit', channel_id: channelId, message_id: String(messageId), content, [ID_FIELD]: clientId });
  }

  /**
   * @param {number} channelId
   * @param {string} messageId
   * @param {{clientId?: string}} [opts]
   */
  delete(channelId, messageId, { clientId } = {}) {
    return this.request({ type: 'delete', channel_id: channelId, message_id: String(messageId), [ID_FIELD]: clientId });
  }

  /**
   * @param {number} channelId
   * @param {string} messageId
   * @param {string} emoji
   * @param {{clientId?: string}} [opts]
   */
  react(channelId, messageId, emoji, { clientId } = {}) {
    return this.request({ type: 'react', channel_id: channelId, message_id: String(messageId), emoji, [ID_FIELD]: clientId });
  }

  /**
   * @param {number} channelId
   * @param {string} messageId
   * @param {string} emoji
   * @param {{clientId?: string}} [opts]
   */
  unreact(channelId, messageId, emoji, { clientId } = {}) {
    return this.request({ type: 'unreact', channel_id: channelId, message_id: String(messageId), emoji, [ID_FIELD]: clientId });
  }

  /**
   * Tells the channel's other members that the user is typing (dropped while not ready).
   * @param {number} channelId
   */
  typing(channelId) {
    if (this.state === 'ready') this._write({ type: 'typing', channel_id: channelId });
  }

  /**
   * Moves the read marker; kept and written on the next `ready` while disconnected.
   * @param {number} channelId
   * @param {number} seq
   */
  markRead(channelId, seq) {
    if (this.state === 'ready' && this._write({ type: 'read', channel_id: channelId, seq })) return;
    this._reads.set(channelId, Math.max(seq, this._reads.get(channelId) ?? 0));
  }

  // ---- frames ----------------------------------------------------------------------------

  _onData(data) {
    this._lastFrameAt = Date.now();
    let parsed;
    try {
      parsed = JSON.parse(data);
    } catch {
      this.emit('error', new ChatError('bad_frame', `unreadable frame: ${String(data).slice(0, 100)}`));
      return;
    }
    // A `chat.v1.batch` socket may carry several frames in one array.
    for (const f of Array.isArray(parsed) ? parsed : [parsed]) this._onFrame(f);
  }

  _onFrame(f) {
    this.emit('frame', f);
    switch (f.type) {
      case 'ready':
        return this._onReady(f);
      case 'message':
      case 'event':
        // A change (edit, delete, reaction, thread counters) takes a seq of its channel like
        // a message: both go through one track, in seq order.
        for (const e of this.tracks.accept(f.type === 'event' ? f.event : f.message)) {
          if ('kind' in e) this.emit('event', e);
          else this.emit('message', e);
        }
        return this._watchGaps();
      case 'ack':
        this.requests.resolve(f);
        return;
      case 'error':
        return this._onError(f);
      case 'channel_added':
        this.tracks.add(f.channel.id, f.channel.last_seq);
        break;
      case 'channel_removed':
        this.tracks.remove(f.channel_id);
        break;
      case 'resume_truncated':
        this._truncated.add(f.channel_id);
        break;
      case 'resumed':
        this._resumeTruncated();
        break;
      case 'pong':
        return;
    }
    // typing, read, presence, member_joined, member_left, channel_added, channel_removed,
    // resume_truncated, resumed, and frames this version does not know: by their type.
    if (!OWN_EVENTS.has(f.type)) this.emit(f.type, f);
  }

  _onReady(f) {
    clearTimeout(this._timers.connect);
    this.session = f;
    this._truncated.clear();
    const resume = this.tracks.onReady(f.channels);
    if (Object.keys(resume).length) this._write({ type: 'resume', channels: resume });
    for (const frame of this.requests.frames()) this._write(frame);
    for (const [channelId, seq] of this._reads) this._write({ type: 'read', channel_id: channelId, seq });
    this._reads.clear();
    this.backoff.reset();
    this._everReady = true;
    this._startPing();
    this._setState('ready');
    this.emit('ready', f);
  }

  _onError(f) {
    const err = new ChatError(f.code, f.message, { retryAfterMs: f.retry_after_ms, frame: f });
    const id = f[ID_FIELD];
    const pending = id == null ? undefined : this.requests.get(String(id));
    if (!pending) {
      this.emit('error', err);
      return;
    }
    if (f.code === 'rate_limited' && this.retryRateLimited) {
      // Nothing was stored: the same frame again once the server allows it.
      setTimeout(() => {
        if (this.requests.get(String(id)) === pending && this.state === 'ready') this._write(pending.frame);
      }, f.retry_after_ms ?? DEFAULT_RETRY_MS);
      return;
    }
    this.requests.reject(String(id), err);
  }

  /** After `resumed`: channels a `resume_truncated` cut short are resumed again from where
   * the replay stopped, until the server has replayed everything. */
  _resumeTruncated() {
    if (!this._truncated.size) return;
    /** @type {Record<string, number>} */
    const channels = {};
    for (const id of this._truncated) {
      const last = this.tracks.last(id);
      if (last !== undefined) channels[id] = last;
    }
    this._truncated.clear();
    if (Object.keys(channels).length) this._write({ type: 'resume', channels });
  }

  /** A hole the server has not filled after `gapResumeMs`: ask again with `resume`. */
  _watchGaps() {
    if (this._timers.gap) return;
    if (!Object.keys(this.tracks.gaps()).length) return;
    this._timers.gap = setTimeout(() => {
      this._timers.gap = null;
      const gaps = this.tracks.gaps();
      if (this.state === 'ready' && Object.keys(gaps).length) this._write({ type: 'resume', channels: gaps });
    }, this.gapResumeMs);
  }

  // ---- sockets ---------------------------------------------------------------------------

  /** @returns {boolean} whether the frame was handed to an open socket */
  _write(frame) {
    const ws = this._sock?.ws;
    if (!ws || ws.readyState !== OPEN) return false;
    try {
      ws.send(JSON.stringify(frame));
      return true;
    } catch {
      return false;
    }
  }

  /** App-level keepalive: a socket silent for `pingIntervalMs` gets a `ping`; one silent
   * `pongTimeoutMs` longer is given up (a dead network can take minutes to report a close). */
  _startPing() {
    clearInterval(this._timers.ping);
    this._lastFrameAt = Date.now();
    const sock = this._sock;
    this._timers.ping = setInterval(
      () => {
        const idle = Date.now() - this._lastFrameAt;
        if (idle >= this.pingIntervalMs + this.pongTimeoutMs) this._drop(sock, 'no answer to ping');
        else if (idle >= this.pingIntervalMs) this._write({ type: 'ping' });
      },
      Math.min(this.pingIntervalMs, this.pongTimeoutMs),
    );
  }

  /** Gives up on a socket without waiting for its close event. */
  _drop(sock, reason) {
    if (this._sock !== sock) return;
    sock.ws.onclose = null;
    try {
      sock.ws.close();
    } catch {
      // already closing
    }
    this._onClose(sock, 1006, reason);
  }

  _stopSocket() {
    const sock = this._sock;
    if (sock) {
      sock.ws.onopen = sock.ws.onmessage = sock.ws.onclose = sock.ws.onerror = null;
    }
    this._sock = null;
    for (const k of Object.keys(this._timers)) {
      clearTimeout(this._timers[k]);
      clearInterval(this._timers[k]);
      this._timers[k] = null;
    }
  }

  _onClose(sock, code, reason) {
    if (this._sock !== sock) return;
    this._stopSocket();
    this.emit('disconnect', { code, reason });
    if (this._closed) return;
    if (code === TOKEN_EXPIRED) return this._failAuth('expired', code);
    if (!sock.opened) return this._probe();
    if (RECONNECT_CODES.has(code)) return this._scheduleReconnect();
    this._closed = true;
    this._setState('closed', { code, reason });
  }

  /** A socket that never opened: a refused token (HTTP 401, which a WebSocket cannot tell
   * apart from a network error) or the network. `GET /api/me` with the token tells which. */
  async _probe() {
    this._setState(this._everReady ? 'reconnecting' : 'connecting');
    let timer;
    try {
      await Promise.race([
        this.rest.me(),
        new Promise((resolve) => {
          timer = setTimeout(resolve, this.connectTimeoutMs);
        }),
      ]);
    } catch (e) {
      if (e instanceof HttpError && e.status === 401) return this._failAuth('invalid', undefined);
    } finally {
      clearTimeout(timer);
    }
    this._scheduleReconnect();
  }

  _failAuth(reason, code) {
    if (this._closed) return;
    this._authFailed = true;
    this._setState('closed', { code, reason: 'auth' });
    this.emit('auth', { reason, code });
  }

  _scheduleReconnect() {
    if (this._closed || this._authFailed) return;
    this._setState(this._everReady ? 'reconnecting' : 'connecting');
    const delay = this.backoff.next();
    this._timers.reconnect = setTimeout(() => {
      this._timers.reconnect = null;
      this.open();
    }, delay);
  }

  _setState(state, info = {}, force = false) {
    if (this.state === state && !force) return;
    this.state = state;
    this.emit('state', state, info);
  }
}
