// Tests against a real cluster: the deployment comes from the environment that
// `cargo test -p cluster --test js_client` sets (CHAT_URL, CHAT_CONTROL_URL, CHAT_JWT_SECRET).
// Without CHAT_URL the cluster tests are skipped, saying why.

import { createHmac } from 'node:crypto';

import { connect, Rest } from '../src/index.js';
import { sleep, until } from './wait.js';

export { sleep, until } from './wait.js';

export const CHAT_URL = process.env.CHAT_URL;
const CONTROL_URL = process.env.CHAT_CONTROL_URL;
const JWT_SECRET = process.env.CHAT_JWT_SECRET;

/** Options of every cluster test: skipped without a cluster, bounded in time. */
export const options = {
  skip: CHAT_URL
    ? false
    : 'CHAT_URL is not set: cluster tests run under `cargo test -p cluster --test js_client`, which starts a cluster',
  timeout: 90_000,
};

/** ... for tests that freeze, kill and restart edges (`CHAT_CONTROL_URL`). */
export const withControl = {
  ...options,
  skip: options.skip || (!CONTROL_URL && 'CHAT_CONTROL_URL is not set: no way to kill and restart edges'),
};

/** ... for tests that sign their own tokens (`CHAT_JWT_SECRET`). */
export const withSecret = {
  ...options,
  skip: options.skip || (!JWT_SECRET && 'CHAT_JWT_SECRET is not set: no way to sign a short-lived token'),
};

/** Clients not closed yet, so a failing test does not leave sockets behind (`closeAll`). */
const open = new Set();

/** Closes every client the test made (an `afterEach` of every cluster test file). */
export function closeAll() {
  for (const c of open) c.close();
  open.clear();
}

if (CHAT_URL && typeof globalThis.WebSocket !== 'function') {
  throw new Error('no global WebSocket: run node 20 with --experimental-websocket');
}

/** How long anything that should happen "soon" may take. */
export const WAIT = 20_000;
const PASSWORD = 'correct-horse-9';
const run = Date.now().toString(36).slice(-5);
let users = 0;

/** A registered, logged-in user: `{id, name, token, rest}`. */
export async function newUser(prefix) {
  users += 1;
  const name = `${prefix}_${run}_${users}`;
  const rest = new Rest(CHAT_URL);
  const user = await rest.register(name, PASSWORD);
  await rest.login(name, PASSWORD);
  return { id: user.id, name, token: rest.token, rest };
}

/** `n` users, all members of one new channel: `{channel, users}`. */
export async function room(prefix, n) {
  const list = [];
  for (let i = 0; i < n; i++) list.push(await newUser(`${prefix}${i}`));
  const channel = await list[0].rest.createChannel(`${prefix} room ${run}`);
  for (const u of list.slice(1)) await u.rest.join(channel.id);
  return { channel: channel.id, users: list };
}

/** A `WebSocket` class that records every frame the client writes, and counts sockets. */
export function recordingWebSocket() {
  const sent = [];
  const sockets = [];
  class Recording extends globalThis.WebSocket {
    constructor(...args) {
      super(...args);
      sockets.push(this);
    }
    send(text) {
      sent.push(JSON.parse(text));
      super.send(text);
    }
  }
  return { WebSocket: Recording, sent, sockets };
}

/**
 * Connects `user` and records what the client reports: states, delivered messages per
 * channel, auth events and every frame by type.
 */
export function client(user, options = {}) {
  const c = connect(CHAT_URL, user.token, { backoff: { baseMs: 100, maxMs: 1000 }, ...options });
  open.add(c);
  const log = { states: [], auth: [], messages: new Map(), frames: [] };
  c.on('state', (s) => log.states.push(s));
  c.on('auth', (a) => log.auth.push(a));
  c.on('frame', (f) => log.frames.push(f));
  c.on('message', (m) => {
    if (!log.messages.has(m.channel_id)) log.messages.set(m.channel_id, []);
    log.messages.get(m.channel_id).push(m);
  });
  c.log = log;
  /** Delivered messages of `channel`. */
  c.delivered = (channel) => log.messages.get(channel) ?? [];
  /** Waits until `n` messages of `channel` were delivered. */
  c.waitFor = (channel, n) => until(() => c.delivered(channel).length >= n, WAIT, `${user.name}: ${n} messages in ${channel}`);
  return c;
}

/** Connects `user` again until its socket is on another edge than `other`'s. */
export async function clientElsewhere(user, other, options) {
  for (let i = 0; i < 10; i++) {
    const c = client(user, options);
    const ready = await c.ready();
    if (ready.edge !== other.session.edge) return c;
    c.close();
    await sleep(200);
  }
  const stats = await (await fetch(`${CHAT_URL}/haproxy?stats;csv`)).text();
  const edges = stats.split('\n').filter((l) => l.startsWith('edges,')).map((l) => l.split(',').slice(0, 20).join(','));
  throw new Error(`${user.name}: always on ${other.session.edge}; HAProxy: ${edges.join(' | ')}`);
}

/** Operates an edge of the cluster: `stop` (SIGSTOP), `kill` (SIGKILL) or `term` (SIGTERM:
 * drain), each waiting for the exit; `start` (starts it again, waits until HAProxy has it UP). */
export async function edge(action, name) {
  const res = await fetch(`${CONTROL_URL}/edges/${name}/${action}`, { method: 'POST' });
  const text = await res.text();
  if (!res.ok) throw new Error(`${action} ${name}: ${res.status} ${text}`);
  return text;
}

const b64url = (x) => Buffer.from(typeof x === 'string' ? x : JSON.stringify(x)).toString('base64url');

/** An HS256 token for `user` expiring `expiresInSecs` from now (negative: already expired). */
export function token(user, expiresInSecs) {
  const now = Math.floor(Date.now() / 1000);
  const body = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url({ sub: user.id, name: user.name, iat: now, exp: now + expiresInSecs })}`;
  return `${body}.${createHmac('sha256', JWT_SECRET).update(body).digest('base64url')}`;
}

/** The seqs of a list of messages. */
export const seqs = (list) => list.map((m) => m.seq);

/** 1..n */
export const range = (n) => Array.from({ length: n }, (_, i) => i + 1);
