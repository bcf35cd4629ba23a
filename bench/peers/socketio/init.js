'use strict';
// Creates the peer's database (the last path segment of DATABASE_URL) if it is missing, then
// its tables (schema.sql). Idempotent; run once before starting the server processes.
const fs = require('node:fs');
const path = require('node:path');
const { Client } = require('pg');

const DATABASE_URL =
  process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5433/peer_socketio';

async function main() {
  const url = new URL(DATABASE_URL);
  const dbName = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(dbName)) {
    throw new Error(`database name ${JSON.stringify(dbName)}: letters, digits and _ only`);
  }
  const adminUrl = new URL(DATABASE_URL);
  adminUrl.pathname = '/postgres';
  const admin = new Client({ connectionString: adminUrl.toString() });
  await admin.connect();
  try {
    const { rowCount } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [dbName]);
    if (rowCount === 0) {
      await admin.query(`CREATE DATABASE ${dbName}`);
      console.log(`init: created database ${dbName}`);
    }
  } finally {
    await admin.end();
  }
  const db = new Client({ connectionString: DATABASE_URL });
  await db.connect();
  try {
    await db.query(fs.readFileSync(path.join(__dirname, 'schema.sql'), 'utf8'));
  } finally {
    await db.end();
  }
  console.log(`init: ${dbName} ready`);
}

main().catch((err) => {
  console.error(`init: ${err.message}`);
  process.exit(1);
});
