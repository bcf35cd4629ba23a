// Against a real cluster: files uploaded over REST, named by sends over the WebSocket and over
// HTTP, delivered on the message to another member, downloaded by members only.
import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';

import { client, clientElsewhere, closeAll, newUser, options, room } from '../test-support/cluster.js';

afterEach(closeAll);

test('attachments: upload, send over WebSocket and HTTP, deliver, download', options, async () => {
  const { channel, users } = await room('files', 2);
  const [alice, bob] = users;
  const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52]);
  const pic = await alice.rest.uploadAttachment(channel, png, 'pic.bin');
  assert.equal(pic.name, 'pic.bin');
  assert.equal(pic.size, png.length);
  assert.equal(pic.content_type, 'image/png', 'sniffed from the bytes, not the name');
  assert.equal(pic.url, `/api/attachments/${pic.id}`);
  const notes = await alice.rest.uploadAttachment(channel, 'some notes', 'notes.txt');
  assert.equal(notes.content_type, 'text/plain; charset=utf-8');

  const a = client(alice);
  await a.ready();
  const b = await clientElsewhere(bob, a);
  const stored = await a.send(channel, 'two files', { attachments: [pic.id, notes.id] });
  assert.deepEqual(stored.attachments, [pic, notes]);
  await b.waitFor(channel, stored.seq);
  const got = b.delivered(channel).find((m) => m.seq === stored.seq);
  assert.deepEqual(got.attachments, [pic, notes], 'the other member gets them on the message');
  const plain = await a.send(channel, 'no files');
  assert.equal(plain.attachments, undefined);

  // Bob's file goes over HTTP; Alice may not name it.
  const his = await bob.rest.uploadAttachment(channel, 'bob', 'bob.txt');
  const overHttp = await bob.rest.sendMessage(channel, 'mine', { attachments: [his.id] });
  assert.deepEqual(overHttp.attachments, [his]);
  await assert.rejects(a.send(channel, 'not mine', { attachments: [his.id] }), { code: 'validation' });

  assert.deepEqual(new Uint8Array(await bob.rest.download(pic.url)), png);
  assert.equal(new TextDecoder().decode(await bob.rest.download(notes.id)), 'some notes');
  const eve = await newUser('files-eve');
  await assert.rejects(eve.rest.download(pic.id), { status: 403, code: 'forbidden' });
  await assert.rejects(eve.rest.uploadAttachment(channel, 'x', 'x.txt'), { status: 403 });
});
