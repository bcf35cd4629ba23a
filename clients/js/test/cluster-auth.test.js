// Against a real cluster: an expired or refused token is an `auth` event, never a reconnect
// loop; a new token brings the client back.
import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';

import {
  WAIT,
  client,
  closeAll,
  newUser,
  options,
  withSecret,
  recordingWebSocket,
  sleep,
  token,
  until,
} from '../test-support/cluster.js';

afterEach(closeAll);

test('a token expiring while connected: close 4001, auth event, no reconnect', withSecret, async () => {
  const u = await newUser('expiring');
  const rec = recordingWebSocket();
  const c = client({ ...u, token: token(u, 2) }, { WebSocket: rec.WebSocket });
  await c.ready();
  await until(() => c.log.auth.length > 0, WAIT, 'the auth event');
  assert.deepEqual(c.log.auth, [{ reason: 'expired', code: 4001 }]);
  assert.equal(c.state, 'closed');
  await sleep(1500);
  assert.equal(rec.sockets.length, 1, 'no reconnect after 4001');
  assert.deepEqual(c.log.states, ['connecting', 'ready', 'closed']);
  c.setToken(u.token);
  await c.ready();
  assert.equal(rec.sockets.length, 2, 'logging in again connects once more');
  c.close();
});

for (const [what, bad, opts] of [
  ['an expired token', (u) => token(u, -60), withSecret],
  ['a token that is not a JWT', () => 'not-a-token', options],
]) {
  test(`${what} at the handshake: auth event, no reconnect loop`, opts, async () => {
    const u = await newUser('refused');
    const rec = recordingWebSocket();
    const c = client({ ...u, token: bad(u) }, { WebSocket: rec.WebSocket });
    await until(() => c.log.auth.length > 0, WAIT, 'the auth event');
    assert.deepEqual(c.log.auth, [{ reason: 'invalid', code: undefined }]);
    await assert.rejects(c.ready(), { code: 'unauthorized' });
    await sleep(1000);
    assert.equal(rec.sockets.length, 1, 'one attempt only');
    assert.deepEqual(c.log.states, ['connecting', 'closed']);
    c.close();
  });
}
