// Per-channel order without a server: duplicates dropped, holes held until filled, resume
// cursors computed from a later `ready`.
import assert from 'node:assert/strict';
import test from 'node:test';

import { Backoff, ChannelTrack, Tracks, endpoints } from '../src/index.js';

const msg = (seq, channel_id = 5) => ({ channel_id, seq, content: `m${seq}` });
const seqs = (list) => list.map((m) => m.seq);

test('a track delivers in seq order, once, holding what is above a hole', () => {
  const t = new ChannelTrack(10);
  assert.deepEqual(seqs(t.accept(msg(11))), [11]);
  assert.deepEqual(seqs(t.accept(msg(11))), [], 'a seq already delivered is dropped');
  assert.deepEqual(seqs(t.accept(msg(9))), [], 'a seq from before the start is dropped');
  assert.deepEqual(seqs(t.accept(msg(13))), [], 'above a hole: held');
  assert.deepEqual(seqs(t.accept(msg(14))), []);
  assert.deepEqual(seqs(t.accept(msg(13))), [], 'a seq already held is dropped');
  assert.ok(t.hasGap());
  assert.deepEqual(seqs(t.accept(msg(12))), [12, 13, 14], 'the fill releases what was held');
  assert.equal(t.last, 14);
  assert.ok(!t.hasGap());
});

test('a later ready resumes the channels where the server is ahead and follows membership', () => {
  const tracks = new Tracks();
  assert.deepEqual(tracks.onReady([{ id: 5, last_seq: 3 }, { id: 7, last_seq: 0 }]), {}, 'the first ready resumes nothing');
  tracks.accept(msg(4, 5));
  tracks.accept(msg(6, 5)); // held above the hole at 5
  const resume = tracks.onReady([
    { id: 5, last_seq: 9 },
    { id: 7, last_seq: 0 },
    { id: 8, last_seq: 2 },
  ]);
  assert.deepEqual(resume, { 5: 4 }, 'channel 5 from its last delivered seq; 7 is current; 8 is new');
  assert.equal(tracks.last(8), 2);
  assert.deepEqual(seqs(tracks.accept(msg(5, 5))), [5, 6], 'what was held survives the reconnect');
  tracks.onReady([{ id: 5, last_seq: 9 }]);
  assert.equal(tracks.last(7), undefined, 'a channel left while disconnected is dropped');
});

test('backoff waits are uniformly jittered under an exponential ceiling', () => {
  const b = new Backoff({ baseMs: 100, maxMs: 1000, random: () => 0.999 });
  const waits = Array.from({ length: 6 }, () => b.next());
  assert.deepEqual(waits, [99, 199, 399, 799, 999, 999]);
  b.reset();
  assert.equal(b.ceiling(), 100);
  const zero = new Backoff({ random: () => 0 });
  assert.equal(zero.next(), 0, 'full jitter: the wait may be zero');
});

test('one URL gives both entry points', () => {
  assert.deepEqual(endpoints('http://127.0.0.1:8080'), { http: 'http://127.0.0.1:8080', ws: 'ws://127.0.0.1:8080/ws' });
  assert.deepEqual(endpoints('https://chat.example/app/'), { http: 'https://chat.example', ws: 'wss://chat.example/ws' });
  assert.deepEqual(endpoints('ws://h:1/ws'), { http: 'http://h:1', ws: 'ws://h:1/ws' });
});
