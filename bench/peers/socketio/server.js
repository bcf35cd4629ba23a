'use strict';
// The benchmark's peer: a plain Socket.IO 4 chat server. Several processes (one per PORT) share
// rooms through @socket.io/redis-adapter; PostgreSQL stores every message before it is acked.
//
//   connect   auth {user_id, channels: [..]}   (trusted: no login, no token; see BENCHMARKS.md)
//             -> the socket joins room `channel:<id>` for each channel
//   emit      'send' {channel_id, content, client_msg_id}, with an ack callback
//             -> BEGIN; UPDATE channels ... RETURNING last_seq; INSERT INTO messages; COMMIT
//             -> ack {seq, id}, then io.to(room).emit('message', {...}) to every member
//
// Environment: PORT (3000), HOST (127.0.0.1), DATABASE_URL, REDIS_URL, PG_POOL_MAX (16).
const http = require('node:http');
const { Server } = require('socket.io');
const { createAdapter } = require('@socket.io/redis-adapter');
const { createClient } = require('redis');
const { Pool } = require('pg');

const PORT = Number(process.env.PORT || 3000);
const HOST = process.env.HOST || '127.0.0.1';
const DATABASE_URL =
  process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5433/peer_socketio';
const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6380';
const PG_POOL_MAX = Number(process.env.PG_POOL_MAX || 16);
const MAX_CONTENT_CHARS = 4000;
const MAX_CHANNELS_PER_SOCKET = 1000;

const pool = new Pool({ connectionString: DATABASE_URL, max: PG_POOL_MAX });
pool.on('error', (err) => console.error(`pg pool: ${err.message}`));

const room = (channelId) => `channel:${channelId}`;
const isId = (v) => Number.isSafeInteger(v) && v > 0;

// Channels this process has already made sure exist.
const knownChannels = new Set();

async function ensureChannels(ids) {
  const missing = ids.filter((id) => !knownChannels.has(id));
  if (missing.length === 0) return;
  await pool.query(
    'INSERT INTO channels (id) SELECT unnest($1::bigint[]) ON CONFLICT (id) DO NOTHING',
    [missing],
  );
  for (const id of missing) knownChannels.add(id);
}

// Stores one message in its own transaction: the channel row's last_seq gives the seq (the row
// lock orders a channel's sends), the insert follows, and the commit is durable before the ack.
async function storeMessage(channelId, senderId, content, clientMsgId) {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    const bumped = await client.query(
      'UPDATE channels SET last_seq = last_seq + 1 WHERE id = $1 RETURNING last_seq',
      [channelId],
    );
    if (bumped.rowCount === 0) {
      await client.query('ROLLBACK');
      return null;
    }
    const seq = Number(bumped.rows[0].last_seq);
    const inserted = await client.query(
      `INSERT INTO messages (channel_id, seq, sender_id, content, client_msg_id)
       VALUES ($1, $2, $3, $4, $5) RETURNING id, created_at`,
      [channelId, seq, senderId, content, clientMsgId],
    );
    await client.query('COMMIT');
    const row = inserted.rows[0];
    return { id: Number(row.id), seq, created_at: row.created_at };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

async function main() {
  const pubClient = createClient({ url: REDIS_URL });
  const subClient = pubClient.duplicate();
  pubClient.on('error', (err) => console.error(`redis pub: ${err.message}`));
  subClient.on('error', (err) => console.error(`redis sub: ${err.message}`));
  await Promise.all([pubClient.connect(), subClient.connect()]);

  const httpServer = http.createServer((req, res) => {
    if (req.url === '/health') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok\n');
      return;
    }
    res.writeHead(404);
    res.end();
  });
  const io = new Server(httpServer, {
    transports: ['websocket'],
    serveClient: false,
    adapter: createAdapter(pubClient, subClient),
  });

  io.use(async (socket, next) => {
    const { user_id: userId, channels } = socket.handshake.auth || {};
    if (
      !isId(userId) ||
      !Array.isArray(channels) ||
      channels.length > MAX_CHANNELS_PER_SOCKET ||
      !channels.every(isId)
    ) {
      next(new Error('auth must be {user_id, channels: [ids]}'));
      return;
    }
    try {
      await ensureChannels(channels);
    } catch (err) {
      console.error(`connect: ${err.message}`);
      next(new Error('unavailable'));
      return;
    }
    socket.data.userId = userId;
    next();
  });

  io.on('connection', (socket) => {
    const { channels } = socket.handshake.auth;
    socket.join(channels.map(room));

    socket.on('send', async (msg, ack) => {
      if (typeof ack !== 'function') return;
      const channelId = msg && msg.channel_id;
      const content = msg && msg.content;
      const clientMsgId = msg && typeof msg.client_msg_id === 'string' ? msg.client_msg_id : null;
      if (
        !isId(channelId) ||
        typeof content !== 'string' ||
        content.length === 0 ||
        content.length > MAX_CONTENT_CHARS
      ) {
        ack({ error: 'validation' });
        return;
      }
      if (!socket.rooms.has(room(channelId))) {
        ack({ error: 'not_member' });
        return;
      }
      let stored;
      try {
        stored = await storeMessage(channelId, socket.data.userId, content, clientMsgId);
      } catch (err) {
        console.error(`send: ${err.message}`);
        ack({ error: 'unavailable' });
        return;
      }
      if (!stored) {
        ack({ error: 'not_found' });
        return;
      }
      ack({ seq: stored.seq, id: stored.id });
      io.to(room(channelId)).emit('message', {
        id: stored.id,
        channel_id: channelId,
        seq: stored.seq,
        sender_id: socket.data.userId,
        content,
        client_msg_id: clientMsgId,
        created_at: stored.created_at,
      });
    });
  });

  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    // Bounded: whatever does not close within 5 s is cut off by the exit.
    setTimeout(() => process.exit(0), 5000).unref();
    io.close(() => {
      Promise.allSettled([pool.end(), pubClient.quit(), subClient.quit()]).then(() =>
        process.exit(0),
      );
    });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);

  httpServer.listen(PORT, HOST, () => {
    console.log(`socketio peer ${process.pid} listening on ${HOST}:${PORT}`);
  });
}

main().catch((err) => {
  console.error(`socketio peer: ${err.message}`);
  process.exit(1);
});
