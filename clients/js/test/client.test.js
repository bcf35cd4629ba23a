// The client's protocol logic against a scripted socket: states, resume cursors, resends with
// the same id, order across a reconnect, auth failures without a reconnect loop.
import assert from 'node:assert/strict';
import { beforeEach, test } from 'node:test';

import { connect } from '../src/index.js';
import { FakeSocket, fetchAnswering, sleep, until } from '../test-support/fake-socket.js';

const ready = (channels) => ({ type: 'ready', session_id: 's', user: { id: 1, username: 'a' }, edge: 'edge-1', channels });
const message = (seq, extra = {}) => ({ type: 'message', message: { channel_id: 5, seq, content: `m${seq}`, ...extra } });
const opts = (extra = {}) => ({ WebSocket: FakeSocket, backoff: { random: () => 0 }, fetch: fetchAnswering(200), ...extra });
const last = () => FakeSocket.made.at(-1);

beforeEach(() => {
  FakeSocket.made = [];
});

test('a reconnect resumes from the last delivered seq, resends with the same id, keeps order', async () => {
  const c = connect('http://chat.test', 'tok', opts());
  const states = [];
  const got = [];
  c.on('state', (s) => states.push(s));
  c.on('message', (m) => got.push(m.seq));
  await until(() => FakeSocket.made.length === 1, 500, 'a socket');
  assert.equal(last().url, 'ws://chat.test/ws?token=tok');
  last().accept();
  last().serve(ready([{ id: 5, last_seq: 2 }]));
  assert.equal(c.state, 'ready');
  const sent = c.send(5, 'hello');
  const [frame] = last().sent;
  assert.equal(frame.type, 'send');
  assert.match(frame.client_msg_id, /^js-[a-z0-9]+-1$/);
  last().serve(message(3));
  last().drop(1006);
  assert.equal(c.state, 'reconnecting');
  await until(() => FakeSocket.made.length === 2, 500, 'a second socket');
  last().accept();
  last().serve(ready([{ id: 5, last_seq: 5 }]));
  assert.deepEqual(last().sent, [{ type: 'resume', channels: { 5: 3 } }, frame], 'resume, then the same send again');
  last().serve(message(6)); // live, above the replayed gap
  last().serve(message(4));
  last().serve(message(5));
  last().serve(message(5));
  last().serve({ type: 'resumed' });
  last().serve({ type: 'ack', client_msg_id: frame.client_msg_id, message: { channel_id: 5, seq: 4 } });
  assert.deepEqual(await sent, { channel_id: 5, seq: 4 });
  assert.deepEqual(got, [3, 4, 5, 6]);
  c.close();
  assert.deepEqual(states, ['connecting', 'ready', 'reconnecting', 'ready', 'closed']);
});

test('close 4001 is an auth event and no reconnect', async () => {
  const c = connect('http://chat.test', 'tok', opts());
  const auth = [];
  c.on('auth', (a) => auth.push(a));
  await until(() => FakeSocket.made.length === 1, 500, 'a socket');
  last().accept();
  last().serve(ready([]));
  const pending = c.send(5, 'kept for later');
  last().drop(4001);
  assert.deepEqual(auth, [{ reason: 'expired', code: 4001 }]);
  assert.equal(c.state, 'closed');
  await sleep(50);
  assert.equal(FakeSocket.made.length, 1, 'no reconnect');
  c.setToken('fresh');
  assert.equal(last().url, 'ws://chat.test/ws?token=fresh', 'a new token connects again');
  last().accept();
  last().serve(ready([]));
  assert.equal(last().sent[0].content, 'kept for later', 'pending sends survive logging in again');
  c.close();
  await assert.rejects(pending, { code: 'closed' });
});

test('a refused handshake is told from a network error by GET /api/me', async () => {
  const refused = fetchAnswering(401);
  const c = connect('http://chat.test', 'bad', opts({ fetch: refused }));
  const auth = [];
  c.on('auth', (a) => auth.push(a));
  await until(() => FakeSocket.made.length === 1, 500, 'a socket');
  last().drop(1006);
  await until(() => auth.length === 1, 500, 'an auth event');
  assert.equal(refused.calls[0].url, 'http://chat.test/api/me');
  assert.equal(refused.calls[0].init.headers.authorization, 'Bearer bad');
  assert.equal(c.state, 'closed');
  await sleep(50);
  assert.equal(FakeSocket.made.length, 1);

  const down = connect('http://chat.test', 'good', opts());
  await until(() => FakeSocket.made.length === 2, 500, 'a socket');
  last().drop(1006);
  await until(() => FakeSocket.made.length === 3, 500, 'a retry after a network error');
  last().fail(); // `error` without `close`, as in Node 20
  await until(() => FakeSocket.made.length === 4, 500, 'a retry after an error alone');
  assert.equal(down.state, 'connecting');
  down.close();
});

test('rate_limited is resent after retry_after_ms; other errors reject', async () => {
  const c = connect('http://chat.test', 'tok', opts());
  await until(() => FakeSocket.made.length === 1, 500, 'a socket');
  last().accept();
  last().serve(ready([{ id: 5, last_seq: 0 }]));
  const first = c.send(5, 'one', { clientMsgId: 'c-1' });
  const second = c.send(5, '', { clientMsgId: 'c-2' });
  last().serve({ type: 'error', code: 'rate_limited', message: 'slow down', client_msg_id: 'c-1', retry_after_ms: 20 });
  last().serve({ type: 'error', code: 'validation', message: 'blank', client_msg_id: 'c-2' });
  await assert.rejects(second, { name: 'ChatError', code: 'validation' });
  await until(() => last().sent.length === 3, 500, 'the resend');
  assert.equal(last().sent[2].client_msg_id, 'c-1');
  last().serve({ type: 'ack', client_msg_id: 'c-1', message: { seq: 1 } });
  assert.deepEqual(await first, { seq: 1 });
  await assert.rejects(c.send(5, 'x'.repeat(70_000)), { code: 'too_large' });
  c.close();
});

test('a truncated resume is resumed again after resumed; a lasting hole is asked for again', async () => {
  const c = connect('http://chat.test', 'tok', opts({ gapResumeMs: 30 }));
  const got = [];
  c.on('message', (m) => got.push(m.seq));
  await until(() => FakeSocket.made.length === 1, 500, 'a socket');
  last().accept();
  last().serve(ready([{ id: 5, last_seq: 0 }]));
  last().drop(1012);
  await until(() => FakeSocket.made.length === 2, 500, 'a reconnect after 1012');
  last().accept();
  last().serve(ready([{ id: 5, last_seq: 2500 }]));
  assert.deepEqual(last().sent, [{ type: 'resume', channels: { 5: 0 } }]);
  last().serve(message(1));
  last().serve(message(2));
  last().serve({ type: 'resume_truncated', channel_id: 5, next_seq: 3 });
  last().serve({ type: 'resumed' });
  assert.deepEqual(last().sent.at(-1), { type: 'resume', channels: { 5: 2 } }, 'from where the replay stopped');
  last().serve(message(4)); // a hole at 3 that nothing fills
  await until(() => last().sent.length === 3, 500, 'a resume for the hole');
  assert.deepEqual(last().sent.at(-1), { type: 'resume', channels: { 5: 2 } });
  last().serve(message(3));
  assert.deepEqual(got, [1, 2, 3, 4]);
  c.close();
});

test('a silent socket is pinged, then given up and replaced', async () => {
  const c = connect('http://chat.test', 'tok', opts({ pingIntervalMs: 20, pongTimeoutMs: 20 }));
  await until(() => FakeSocket.made.length === 1, 500, 'a socket');
  last().accept();
  last().serve(ready([]));
  await until(() => last().sent.some((f) => f.type === 'ping'), 500, 'a ping');
  await until(() => FakeSocket.made.length === 2, 500, 'a new socket');
  assert.equal(c.state, 'reconnecting');
  c.close();
});
