// Against a real cluster: the REST helpers (accounts, channels, membership, history paging).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { HttpError, Rest } from '../src/index.js';
import { CHAT_URL, newUser, options } from '../test-support/cluster.js';

test('register, login, channels, join, leave and history pages', options, async () => {
  const alice = await newUser('rest');
  const bob = await newUser('rest');
  await assert.rejects(new Rest(CHAT_URL).register(alice.name, 'another-password'), (e) => {
    assert.ok(e instanceof HttpError);
    assert.equal(e.status, 409);
    assert.equal(e.code, 'conflict');
    return true;
  });
  await assert.rejects(new Rest(CHAT_URL).login(alice.name, 'wrong-password'), { status: 401, code: 'unauthorized' });
  assert.equal((await alice.rest.me()).id, alice.id);

  const ch = await alice.rest.createChannel('rest channel');
  assert.equal(ch.kind, 'group');
  const listed = [];
  for (let after; ; ) {
    const page = await bob.rest.channels({ after, limit: 200 });
    listed.push(...page.channels);
    if (page.next == null) break;
    after = page.next;
  }
  assert.ok(listed.some((c) => c.id === ch.id), 'public channels list it');
  await bob.rest.join(ch.id);
  assert.ok((await bob.rest.myChannels()).some((c) => c.id === ch.id));
  assert.deepEqual((await alice.rest.members(ch.id)).map((m) => m.id).sort(), [alice.id, bob.id].sort());

  for (let i = 1; i <= 7; i++) await alice.rest.sendMessage(ch.id, `m${i}`, { clientMsgId: `rest-${i}` });
  const back = [];
  for await (const page of bob.rest.pages(ch.id, { limit: 3 })) back.push(page.map((m) => m.seq));
  assert.deepEqual(back, [[7, 6, 5], [4, 3, 2], [1]], 'newest first, three at a time');
  const forward = [];
  for await (const page of bob.rest.pages(ch.id, { after: 2, limit: 3 })) forward.push(page.map((m) => m.seq));
  assert.deepEqual(forward, [[3, 4, 5], [6, 7]], 'ascending after a seq');
  const again = await alice.rest.sendMessage(ch.id, 'm1', { clientMsgId: 'rest-1' });
  assert.equal(again.seq, 1, 'an HTTP retry with the same id gets the original');
  assert.deepEqual(await bob.rest.markRead(ch.id, 7), { channel_id: ch.id, last_read_seq: 7 });

  await bob.rest.leave(ch.id);
  assert.ok(!(await bob.rest.myChannels()).some((c) => c.id === ch.id));
  await assert.rejects(bob.rest.history(ch.id), { status: 403, code: 'forbidden' });
});
