// REST helpers over `fetch` (SPEC section 3, docs/API.md): accounts, channels, membership,
// history paging, sends over HTTP, attachments and read markers. Errors become `HttpError`s carrying the
// server's `code`.

import { HttpError } from './errors.js';

/**
 * The two entry points of a deployment from one URL: `http://host:8080` (or any path on it)
 * or `ws://host:8080/ws`. In a browser a relative URL (or none) means this page's host.
 * @param {string} [url]
 * @returns {{http: string, ws: string}} `http` without a trailing slash; `ws` ends in `/ws`
 */
export function endpoints(url) {
  const base = globalThis.location?.href;
  const u = new URL(url ?? '/', base);
  const secure = u.protocol === 'https:' || u.protocol === 'wss:';
  const http = `${secure ? 'https' : 'http'}://${u.host}`;
  const wsPath = u.protocol.startsWith('ws') && u.pathname !== '/' ? u.pathname : '/ws';
  return { http, ws: `${secure ? 'wss' : 'ws'}://${u.host}${wsPath}` };
}

/** @param {Record<string, unknown>} params */
function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null) q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}

export class Rest {
  /**
   * @param {string} [url] the deployment (`http://host:8080`); see `endpoints`
   * @param {{token?: string, fetch?: typeof fetch}} [opts]
   */
  constructor(url, { token, fetch: f } = {}) {
    this.base = endpoints(url).http;
    this.token = token;
    this._fetch = f ?? globalThis.fetch.bind(globalThis);
  }

  /**
   * One call; resolves with the parsed body (null for 204), rejects with an `HttpError`.
   * @param {string} method
   * @param {string} path
   * @param {unknown} [body]
   */
  async request(method, path, body) {
    /** @type {Record<string, string>} */
    const headers = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await this._call(method, path, headers, body === undefined ? undefined : JSON.stringify(body));
    const text = await res.text();
    try {
      return text ? JSON.parse(text) : null;
    } catch {
      return text;
    }
  }

  /**
   * The response of a call that succeeded; rejects with an `HttpError` otherwise.
   * @param {string} method
   * @param {string} path
   * @param {Record<string, string>} headers
   * @param {BodyInit} [body]
   */
  async _call(method, path, headers, body) {
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    const res = await this._fetch(this.base + path, { method, headers, body });
    if (res.ok) return res;
    const text = await res.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = text;
    }
    const e = data?.error ?? {};
    throw new HttpError(res.status, e.code ?? 'http_error', e.message ?? `${res.status} ${res.statusText}`, {
      retryAfterMs: e.retry_after_ms,
      body: data,
    });
  }

  register(username, password) {
    return this.request('POST', '/api/register', { username, password });
  }

  /** Logs in and keeps the token for the following calls. */
  async login(username, password) {
    const r = await this.request('POST', '/api/login', { username, password });
    this.token = r.token;
    return r;
  }

  me() {
    return this.request('GET', '/api/me');
  }

  /** @param {{online?: boolean, after?: number, limit?: number}} [opts] */
  users({ online, after, limit } = {}) {
    return this.request('GET', `/api/users${query({ online, after, limit })}`);
  }

  /**
   * Public channels, one page: `{channels, next}`.
   * @param {{after?: number, limit?: number}} [opts]
   */
  channels({ after, limit } = {}) {
    return this.request('GET', `/api/channels${query({ after, limit })}`);
  }

  /** The caller's channels with `last_seq`, `last_read_seq` and `unread`. */
  async myChannels() {
    return (await this.request('GET', '/api/me/channels')).channels;
  }

  createChannel(name) {
    return this.request('POST', '/api/channels', { name });
  }

  join(channelId) {
    return this.request('POST', `/api/channels/${channelId}/join`, {});
  }

  leave(channelId) {
    return this.request('POST', `/api/channels/${channelId}/leave`, {});
  }

  async members(channelId) {
    return (await this.request('GET', `/api/channels/${channelId}/members`)).members;
  }

  /** Get-or-create the direct channel with `userId`. */
  dm(userId) {
    return this.request('POST', '/api/dms', { user_id: userId });
  }

  /**
   * One page of history: newest first below `before`, or ascending above `after`.
   * @param {number} channelId
   * @param {{before?: number, after?: number, limit?: number}} [opts]
   * @returns {Promise<{messages: any[], next: number | null}>}
   */
  history(channelId, { before, after, limit } = {}) {
    return this.request('GET', `/api/channels/${channelId}/messages${query({ before, after, limit })}`);
  }

  /**
   * Every page from a starting point, following `next`: backwards from `before` (or the
   * newest) without `after`, forwards from `after` with it.
   * @param {number} channelId
   * @param {{before?: number, after?: number, limit?: number}} [opts]
   * @returns {AsyncGenerator<any[]>}
   */
  async *pages(channelId, { before, after, limit } = {}) {
    const forward = after !== undefined;
    let cursor = forward ? after : before;
    for (;;) {
      const page = await this.history(channelId, forward ? { after: cursor, before, limit } : { before: cursor, limit });
      if (page.messages.length) yield page.messages;
      if (page.next == null) return;
      cursor = page.next;
    }
  }

  /**
   * A send over HTTP (same rules as a WebSocket send).
   * @param {number} channelId
   * @param {string} content
   * @param {{clientMsgId?: string, replyTo?: number, attachments?: string[]}} [opts]
   */
  sendMessage(channelId, content, { clientMsgId, replyTo, attachments } = {}) {
    return this.request('POST', `/api/channels/${channelId}/messages`, {
      content,
      client_msg_id: clientMsgId,
      reply_to: replyTo,
      attachments,
    });
  }

  /**
   * Uploads a file to a channel (members only; its type is sniffed by the server, not taken
   * from here); resolves with the attachment (`id`, `name`, `size`, `content_type`, `url`),
   * whose `id` a send names in its `attachments`.
   * @param {number} channelId
   * @param {Blob | ArrayBuffer | Uint8Array | string} data
   * @param {string} name
   */
  async uploadAttachment(channelId, data, name) {
    const headers = { 'content-type': 'application/octet-stream' };
    const path = `/api/channels/${channelId}/attachments${query({ name })}`;
    return (await this._call('POST', path, headers, data)).json();
  }

  /**
   * An attachment's bytes (members only), from its `id` or its `url` (or a picture's
   * `thumbnail_url`).
   * @param {string} idOrUrl
   * @returns {Promise<ArrayBuffer>}
   */
  async download(idOrUrl) {
    const path = idOrUrl.startsWith('/') ? idOrUrl : `/api/attachments/${encodeURIComponent(idOrUrl)}`;
    return (await this._call('GET', path, {})).arrayBuffer();
  }

  markRead(channelId, seq) {
    return this.request('POST', `/api/channels/${channelId}/read`, { seq });
  }
}
