// Against a real cluster (two edges behind HAProxy): send and ack, two clients on different
// edges, typing, read markers and presence.
import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';

import {
  WAIT,
  client,
  clientElsewhere,
  closeAll,
  newUser,
  options,
  range,
  room,
  seqs,
  until,
} from '../test-support/cluster.js';

afterEach(closeAll);

test('send resolves with the stored message once committed, and it is delivered once', options, async () => {
  const alice = await newUser('ack');
  const channel = (await alice.rest.createChannel('acks')).id;
  const c = client(alice);
  const ready = await c.ready();
  assert.equal(ready.user.id, alice.id);
  assert.ok(ready.channels.some((ch) => ch.id === channel));
  const stored = await c.send(channel, 'hello', { clientMsgId: 'ack-1' });
  assert.equal(stored.seq, 1);
  assert.equal(stored.content, 'hello');
  assert.equal(stored.client_msg_id, 'ack-1');
  assert.equal(stored.sender_id, alice.id);
  assert.equal(typeof stored.id, 'string');
  const again = await c.send(channel, 'hello', { clientMsgId: 'ack-1' });
  assert.deepEqual(again, stored, 'the same client id answers with the original');
  await c.waitFor(channel, 1);
  await c.send(channel, 'second');
  await c.waitFor(channel, 2);
  assert.deepEqual(seqs(c.delivered(channel)), [1, 2]);
  c.close();
  assert.deepEqual(c.log.states, ['connecting', 'ready', 'closed']);
  await assert.rejects(c.send(channel, 'too late'), { code: 'closed' });
});

test('two clients on different edges see each other\'s messages once and in order', options, async () => {
  const { channel, users } = await room('pair', 2);
  const a = client(users[0]);
  await a.ready();
  const b = await clientElsewhere(users[1], a);
  assert.notEqual(a.session.edge, b.session.edge);
  const sends = [];
  for (let i = 0; i < 15; i++) {
    sends.push(a.send(channel, `a${i}`));
    sends.push(b.send(channel, `b${i}`));
  }
  const acked = await Promise.all(sends);
  assert.deepEqual(seqs(acked).sort((x, y) => x - y), range(30), 'one stored message per send');
  await a.waitFor(channel, 30);
  await b.waitFor(channel, 30);
  for (const c of [a, b]) assert.deepEqual(seqs(c.delivered(channel)), range(30));
  assert.deepEqual(
    a.delivered(channel).map((m) => m.id),
    b.delivered(channel).map((m) => m.id),
    'both saw the same messages in the same order',
  );
  const aOwn = a.delivered(channel).filter((m) => m.sender_id === users[0].id).map((m) => m.content);
  assert.deepEqual(aOwn, range(15).map((i) => `a${i - 1}`), 'a socket\'s sends commit in the order sent');
  await new Promise((r) => setTimeout(r, 300));
  for (const c of [a, b]) assert.equal(c.delivered(channel).length, 30, 'nothing more came');
  a.close();
  b.close();
});

test('typing, read markers and presence reach the other member across edges', options, async () => {
  const { channel, users } = await room('live', 2);
  const a = client(users[0]);
  await a.ready();
  const seen = { typing: [], read: [], presence: [] };
  for (const type of Object.keys(seen)) a.on(type, (f) => seen[type].push(f));
  const b = await clientElsewhere(users[1], a);
  const bId = users[1].id;
  await until(() => seen.presence.some((p) => p.user_id === bId && p.status === 'online'), WAIT, 'b online');
  b.typing(channel);
  await until(() => seen.typing.length > 0, WAIT, 'typing');
  assert.equal(seen.typing[0].user_id, bId);
  assert.equal(seen.typing[0].channel_id, channel);
  const m = await b.send(channel, 'read me');
  b.markRead(channel, m.seq);
  await until(() => seen.read.some((r) => r.user_id === bId), WAIT, 'read marker');
  assert.deepEqual(
    seen.read.find((r) => r.user_id === bId),
    { type: 'read', channel_id: channel, user_id: bId, seq: m.seq },
  );
  const before = seen.presence.length;
  b.close();
  await until(
    () => seen.presence.slice(before).some((p) => p.user_id === bId && p.status === 'offline'),
    WAIT,
    'b offline',
  );
  a.close();
});
