// Against a real cluster: edits, reactions and deletes are sequenced with the messages of
// their channel, so they reach another edge's client once, in seq order, and the messages
// after them are not held back as if above a hole.
import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';

import { client, clientElsewhere, closeAll, options, room, until, WAIT } from '../test-support/cluster.js';

afterEach(closeAll);

test('edits, reactions and deletes arrive once, in seq order, between the messages', options, async () => {
  const { channel, users } = await room('events', 2);
  const a = client(users[0]);
  await a.ready();
  const b = await clientElsewhere(users[1], a);
  const seen = [];
  b.on('message', (m) => seen.push({ seq: m.seq, what: 'message' }));
  b.on('event', (e) => seen.push({ seq: e.seq, what: e.kind, content: e.content, count: e.count }));

  const first = await a.send(channel, 'helo');
  const edited = await a.edit(channel, first.id, 'hello');
  assert.equal(edited.content, 'hello', 'the ack carries the message as it is now');
  await b.react(channel, first.id, '👍');
  const second = await a.send(channel, 'oops');
  await a.delete(channel, second.id);
  await a.send(channel, 'last');
  await until(() => seen.length >= 6, WAIT, 'six entries on the other edge');

  assert.deepEqual(
    seen.map((x) => x.what),
    ['message', 'message_edited', 'reaction_added', 'message', 'message_deleted', 'message'],
  );
  const order = seen.map((x) => x.seq);
  assert.deepEqual(order, [...order].sort((x, y) => x - y), 'in seq order');
  assert.equal(new Set(order).size, order.length, 'each once');
  assert.equal(seen[1].content, 'hello');
  assert.equal(seen[2].count, 1);
  assert.equal(b.lastSeq(channel), order[order.length - 1], 'nothing held above a hole');
  await assert.rejects(b.edit(channel, first.id, 'not mine'), (e) => e.code === 'forbidden');
});
