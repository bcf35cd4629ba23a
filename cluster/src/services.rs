//! The stateful services the launcher starts when no URL is given: PostgreSQL (initdb on
//! first run, data kept across runs, database `chat` created and migrated) and Redis (its
//! commands come from `procs::redis`); plus the JWT secret kept in the data dir.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use procs::{pg_bin, User};
use shared::store::migrate::connect;

/// The database the cluster uses on a PostgreSQL it starts.
pub const DB_NAME: &str = "chat";

/// Runs `initdb` into `dir` unless it already holds a cluster. Returns true when it created one.
pub fn init_pg(dir: &Path, owner: Option<User>) -> anyhow::Result<bool> {
    if dir.join("PG_VERSION").exists() {
        return Ok(false);
    }
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    if let Some(user) = owner {
        user.chown(dir)
            .with_context(|| format!("chown {} to postgres", dir.display()))?;
    }
    let out = procs::initdb(dir, owner)
        .output()
        .context("run initdb (is PostgreSQL installed?)")?;
    if !out.status.success() {
        anyhow::bail!(
            "initdb into {} failed (the postgres user must be able to reach that directory): {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(true)
}

/// The `postgres` command serving `dir` on 127.0.0.1:`port` (TCP only, no Unix socket).
pub fn pg_command(dir: &Path, port: u16, owner: Option<User>) -> Command {
    let mut cmd = Command::new(pg_bin("postgres"));
    cmd.arg("-D")
        .arg(dir)
        .args(["-p", &port.to_string(), "-k", ""])
        .args(["-c", "listen_addresses=127.0.0.1"])
        .args(["-c", "max_connections=400", "-c", "shared_buffers=128MB"]);
    if let Some(user) = owner {
        user.apply(&mut cmd);
    }
    cmd
}

/// Waits until PostgreSQL on `port` accepts, creates database `chat` if missing, and
/// applies the migrations. Returns the database URL.
pub async fn prepare_pg(port: u16, timeout: Duration) -> anyhow::Result<String> {
    let admin_url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    let deadline = Instant::now() + timeout;
    let admin = loop {
        match connect(&admin_url).await {
            Ok(c) => break c,
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    };
    let exists = admin
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&DB_NAME])
        .await?
        .is_some();
    if !exists {
        admin
            .batch_execute(&format!("CREATE DATABASE {DB_NAME}"))
            .await
            .context("create database chat")?;
    }
    let url = format!("postgres://postgres@127.0.0.1:{port}/{DB_NAME}");
    migrate(&url).await?;
    Ok(url)
}

/// Applies the schema migrations to `url` (idempotent, under an advisory lock).
pub async fn migrate(url: &str) -> anyhow::Result<usize> {
    let mut c = connect(url).await?;
    shared::store::migrate::run(&mut c).await
}

/// Reads `path`, or writes 32 random bytes (64 hex characters) into it with mode 0600.
pub fn jwt_secret(path: &Path) -> anyhow::Result<String> {
    if let Ok(s) = std::fs::read_to_string(path) {
        let s = s.trim().to_owned();
        if s.len() >= shared::auth::MIN_SECRET_BYTES {
            return Ok(s);
        }
    }
    let mut bytes = [0u8; 32];
    std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom")?, &mut bytes)
        .context("read /dev/urandom")?;
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("write {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    writeln!(f, "{secret}")?;
    Ok(secret)
}

/// Spawns `cmd` with stdout and stderr appended to `log`, dying with the launcher and in its
/// own process group (a Ctrl-C at the terminal reaches only the launcher, which then stops the
/// children in order, edges first).
pub fn spawn_logged(mut cmd: Command, log: &Path) -> anyhow::Result<std::process::Child> {
    let name = cmd_name(&cmd);
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("open {}", log.display()))?;
    let err = out.try_clone()?;
    cmd.stdin(Stdio::null()).stdout(out).stderr(err);
    procs::spawn(cmd, procs::Group::Own).with_context(|| format!("spawn {name} (is it installed?)"))
}

fn cmd_name(cmd: &Command) -> String {
    cmd.get_program().to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwt_secret_is_created_private_and_reused() {
        let dir = std::env::temp_dir().join(format!("jwt-{}", uuid_like()));
        std::fs::create_dir_all(&dir).unwrap_or_default();
        let path = dir.join("jwt_secret");
        let a = jwt_secret(&path).unwrap_or_default();
        assert_eq!(a.len(), 64);
        let mode = std::fs::metadata(&path).map(|m| m.permissions().mode() & 0o777);
        assert_eq!(mode.ok(), Some(0o600));
        assert_eq!(jwt_secret(&path).unwrap_or_default(), a);
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn uuid_like() -> String {
        format!(
            "{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_nanos()
        )
    }
}
