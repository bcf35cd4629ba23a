// Against a real cluster: an edge killed (-9) under traffic, sends retried across the
// reconnect, an edge drained (1012). Each test starts the edge again before it ends.
import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';

import {
  WAIT,
  client,
  clientElsewhere,
  closeAll,
  edge,
  range,
  recordingWebSocket,
  room,
  seqs,
  sleep,
  until,
  withControl,
} from '../test-support/cluster.js';

afterEach(closeAll);

/** Kills `name` with `action`s in order, runs `during`, then starts the edge again. */
async function withEdgeDown(name, actions, during) {
  try {
    for (const a of actions) await edge(a, name);
    await during();
  } finally {
    await edge('start', name);
  }
}

// The edge is frozen (SIGSTOP) for ten messages before the SIGKILL, so the victim certainly
// misses some and must resume them; the stream goes on while it reconnects.
test('an edge killed mid-stream: reconnecting, ready, resumed, every message once and in order', withControl, async () => {
  const { channel, users } = await room('kill', 2);
  const sender = client(users[0]);
  await sender.ready();
  const rec = recordingWebSocket();
  const victim = await clientElsewhere(users[1], sender, { WebSocket: rec.WebSocket });
  const resumed = [];
  victim.on('resumed', () => resumed.push(Date.now()));
  const killed = victim.session.edge;
  const sends = [];
  await withEdgeDown(killed, [], async () => {
    let killing;
    for (let i = 0; i < 60; i++) {
      sends.push(sender.send(channel, `s${i}`));
      if (i % 6 === 0) sends.push(victim.send(channel, `v${i}`));
      if (i === 15) await edge('stop', killed);
      if (i === 25) killing = edge('kill', killed);
      await sleep(25);
    }
    await killing;
    const acked = await Promise.all(sends);
    const total = sends.length;
    assert.deepEqual(seqs(acked).sort((x, y) => x - y), range(total), 'one stored message per send');
    await sender.waitFor(channel, total);
    await victim.waitFor(channel, total);
    assert.deepEqual(seqs(victim.delivered(channel)), range(total), 'the victim: every seq once, in order');
    assert.deepEqual(seqs(sender.delivered(channel)), range(total));
  });
  assert.deepEqual(victim.log.states, ['connecting', 'ready', 'reconnecting', 'ready']);
  assert.notEqual(victim.session.edge, killed, 'moved off the killed edge');
  assert.ok(resumed.length >= 1, 'the reconnect resumed');
  const resumes = rec.sent.filter((f) => f.type === 'resume');
  assert.ok(resumes.length >= 1 && resumes[0].channels[channel] >= 0, `resume sent: ${JSON.stringify(resumes)}`);
  assert.deepEqual(sender.log.states, ['connecting', 'ready'], 'the other edge\'s client never noticed');
  sender.close();
  victim.close();
});

test('sends written to an edge that dies are retried with the same id and stored once', withControl, async () => {
  const { channel, users } = await room('retry', 2);
  const watcher = client(users[0]);
  await watcher.ready();
  const rec = recordingWebSocket();
  const c = await clientElsewhere(users[1], watcher, { WebSocket: rec.WebSocket });
  const doomed = c.session.edge;
  let pending = [];
  await withEdgeDown(doomed, ['stop'], async () => {
    // The edge is frozen: these reach its socket buffer and are never read.
    for (let i = 0; i < 5; i++) pending.push(c.send(channel, `frozen ${i}`));
    await until(() => rec.sent.filter((f) => f.type === 'send').length === 5, WAIT, 'the frozen writes');
    await edge('kill', doomed);
    // Unfrozen and killed at once: a burst in flight while the socket dies.
    const burst = [];
    for (let i = 0; i < 20; i++) burst.push(c.send(channel, `burst ${i}`));
    pending = pending.concat(burst);
    await Promise.all(pending);
  });
  const acked = await Promise.all(pending);
  assert.deepEqual(seqs(acked).sort((x, y) => x - y), range(25), 'each send stored once');
  const writes = new Map();
  for (const f of rec.sent.filter((f) => f.type === 'send')) writes.set(f.client_msg_id, (writes.get(f.client_msg_id) ?? 0) + 1);
  assert.equal(writes.size, 25);
  const retried = [...writes.values()].filter((n) => n > 1).length;
  assert.ok(retried >= 5, `the frozen sends were written again after the reconnect (${retried} retried)`);
  const history = [];
  for await (const page of users[0].rest.pages(channel, { after: 0, limit: 10 })) history.push(...page);
  assert.equal(history.length, 25, 'the channel holds 25 messages');
  assert.equal(new Set(history.map((m) => m.client_msg_id)).size, 25, 'one per client id');
  await watcher.waitFor(channel, 25);
  assert.deepEqual(seqs(watcher.delivered(channel)), range(25));
  await c.waitFor(channel, 25);
  assert.deepEqual(seqs(c.delivered(channel)), range(25));
  watcher.close();
  c.close();
});

test('an edge draining on SIGTERM: close 1012, reconnect elsewhere, nothing lost', withControl, async () => {
  const { channel, users } = await room('drain', 2);
  const sender = client(users[0]);
  await sender.ready();
  const c = await clientElsewhere(users[1], sender);
  const drained = c.session.edge;
  const closes = [];
  c.on('disconnect', (d) => closes.push(d.code));
  const sends = [];
  await withEdgeDown(drained, [], async () => {
    for (let i = 0; i < 10; i++) sends.push(sender.send(channel, `before ${i}`));
    await edge('term', drained);
    for (let i = 0; i < 10; i++) sends.push(sender.send(channel, `after ${i}`));
    await Promise.all(sends);
    await c.waitFor(channel, 20);
  });
  assert.deepEqual(closes, [1012]);
  assert.notEqual(c.session.edge, drained);
  assert.deepEqual(seqs(c.delivered(channel)), range(20));
  assert.deepEqual(c.log.states, ['connecting', 'ready', 'reconnecting', 'ready']);
});
