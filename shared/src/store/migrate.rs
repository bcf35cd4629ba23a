//! Versioned schema migrations, embedded in the binary and applied on start under an
//! advisory lock, so several processes starting at once apply each migration exactly once.

use anyhow::Context;

/// `(version, name, sql)` in ascending version order. Never edit a released migration:
/// add a new one.
pub const MIGRATIONS: &[(i32, &str, &str)] = &[
    (1, "init", include_str!("../../migrations/0001_init.sql")),
    (
        2,
        "send_messages",
        include_str!("../../migrations/0002_send_messages.sql"),
    ),
    (
        3,
        "send_messages_set_based",
        include_str!("../../migrations/0003_send_messages_set_based.sql"),
    ),
    (
        4,
        "channel_events",
        include_str!("../../migrations/0004_channel_events.sql"),
    ),
    (
        5,
        "mentions",
        include_str!("../../migrations/0005_mentions.sql"),
    ),
    (
        6,
        "blocks",
        include_str!("../../migrations/0006_blocks.sql"),
    ),
    (
        7,
        "search",
        include_str!("../../migrations/0007_search.sql"),
    ),
    (
        8,
        "attachments",
        include_str!("../../migrations/0008_attachments.sql"),
    ),
];

/// Arbitrary key for `pg_advisory_xact_lock`, shared by every process of the system.
const LOCK_KEY: i64 = 0x0000_c4a7_0001;

/// Applies every migration not yet recorded in `schema_migrations`; returns how many ran.
pub async fn run(client: &mut tokio_postgres::Client) -> anyhow::Result<usize> {
    let tx = client.transaction().await.context("begin migration")?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_KEY])
        .await
        .context("take migration lock")?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version    INT PRIMARY KEY,
            name       TEXT NOT NULL,
            applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )
    .await
    .context("create schema_migrations")?;
    let applied: Vec<i32> = tx
        .query("SELECT version FROM schema_migrations", &[])
        .await
        .context("read schema_migrations")?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut ran = 0;
    for (version, name, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        tx.batch_execute(sql)
            .await
            .with_context(|| format!("apply migration {version} {name}"))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
            &[version, name],
        )
        .await
        .context("record migration")?;
        ran += 1;
    }
    tx.commit().await.context("commit migrations")?;
    Ok(ran)
}

/// One plain connection to `url` outside any pool (migrations, database administration),
/// its connection task spawned on the current runtime.
pub async fn connect(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .with_context(|| format!("connect to {url}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}
