//! PostgreSQL's server binaries (`initdb`, `postgres`, `pg_isready`): where they are, and
//! the `initdb` every server we start is made with.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::User;

/// Finds a PostgreSQL binary: `$PG_BIN`, the distribution's versioned dirs (newest first),
/// then `PATH`.
pub fn pg_bin(name: &str) -> PathBuf {
    if let Ok(dir) = std::env::var("PG_BIN") {
        return PathBuf::from(dir).join(name);
    }
    (12..=20)
        .rev()
        .map(|v| PathBuf::from(format!("/usr/lib/postgresql/{v}/bin/{name}")))
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from(name))
}

/// `initdb` of a new cluster in `dir`: superuser `postgres` with trust authentication (our
/// servers listen on 127.0.0.1 only), UTF-8, run as `owner` when given (who must own `dir`, or
/// its parent when `dir` does not exist yet). Stdout is discarded; stderr is captured for the
/// error of a failed run.
pub fn initdb(dir: &Path, owner: Option<User>) -> Command {
    let mut cmd = Command::new(pg_bin("initdb"));
    cmd.arg("-D")
        .arg(dir)
        .args(["-U", "postgres", "--auth=trust", "-E", "UTF8"])
        .arg("--no-instructions")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(user) = owner {
        user.apply(&mut cmd);
    }
    cmd
}
