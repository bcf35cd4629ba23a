//! Scratch directories of test servers. Each names the process that owns it, so a directory
//! whose owner is gone (a killed test runs no destructor, and process-wide servers live in
//! statics that are never dropped) is swept when the next one is made.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The file in a scratch directory that holds its owner's pid.
const OWNER: &str = "owner.pid";

/// A directory without an owner file (made before owners were recorded) is swept once it is
/// this old.
const UNOWNED_AGE: Duration = Duration::from_secs(3600);

/// Makes `<temp dir>/<prefix>-<uuid>` owned by this process, after removing every
/// `<prefix>-*` directory whose owner has exited.
pub fn make(prefix: &str) -> io::Result<PathBuf> {
    let tmp = std::env::temp_dir();
    sweep(&tmp, prefix);
    let dir = tmp.join(format!("{prefix}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(OWNER), std::process::id().to_string())?;
    Ok(dir)
}

/// Removes the `<prefix>-*` directories under `tmp` that no live process owns.
fn sweep(tmp: &Path, prefix: &str) {
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    let start = format!("{prefix}-");
    for e in entries.flatten() {
        let name = e.file_name();
        if !name.to_string_lossy().starts_with(&start) {
            continue;
        }
        let path = e.path();
        if abandoned(&path) {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

/// True when `dir`'s owner has exited, or it has no owner and is old.
fn abandoned(dir: &Path) -> bool {
    match std::fs::read_to_string(dir.join(OWNER)) {
        Ok(pid) => pid
            .trim()
            .parse::<libc::pid_t>()
            .is_ok_and(|p| !procs::alive(p)),
        Err(_) => std::fs::metadata(dir)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > UNOWNED_AGE),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_owners_directory_is_swept_and_a_live_ones_kept() {
        let prefix = format!("scratch-test-{}", uuid::Uuid::new_v4().simple());
        let mine = make(&prefix).unwrap();
        // A process that has exited: a child we started and reaped.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        child.wait().unwrap();
        let dead = std::env::temp_dir().join(format!("{prefix}-dead"));
        std::fs::create_dir_all(dead.join("data")).unwrap();
        std::fs::write(dead.join(OWNER), child.id().to_string()).unwrap();
        let young_unowned = std::env::temp_dir().join(format!("{prefix}-unowned"));
        std::fs::create_dir_all(&young_unowned).unwrap();

        let next = make(&prefix).unwrap();
        assert!(!dead.exists(), "a dead owner's directory is swept");
        assert!(mine.exists(), "a live owner's directory stays");
        assert!(young_unowned.exists(), "a young unowned directory stays");
        for d in [mine, next, young_unowned] {
            std::fs::remove_dir_all(d).unwrap();
        }
    }
}
