//! Running servers as the `postgres` user when we are root (`initdb` and `postgres` refuse
//! to run as root), and letting that user reach its directory.
#![allow(unsafe_code)]

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A user (and its primary group) that children run as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
}

/// The user `name` when we run as root; `None` when we are not root (children run as we do)
/// or there is no such user.
pub fn drop_to(name: &str) -> Option<User> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let cname = std::ffi::CString::new(name).ok()?;
    // SAFETY: getpwnam returns null or a pointer into static storage, read at once below
    // (no other call in between may overwrite it).
    let pw = unsafe { libc::getpwnam(cname.as_ptr()) };
    if pw.is_null() {
        return None;
    }
    // SAFETY: pw is non-null and points to a valid passwd entry.
    let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
    Some(User { uid, gid })
}

impl User {
    /// Makes `cmd` run as this user. std switches the group and user (and, from root, drops
    /// the supplementary groups) before any `pre_exec` closure, so the death signal set by
    /// [`crate::spawn`] survives the switch.
    pub fn apply(&self, cmd: &mut Command) {
        use std::os::unix::process::CommandExt;
        cmd.uid(self.uid).gid(self.gid);
    }

    /// Gives `path` to this user.
    pub fn chown(&self, path: &Path) -> std::io::Result<()> {
        std::os::unix::fs::chown(path, Some(self.uid), Some(self.gid))
    }

    /// Adds the search (traverse) bit, and only that bit, to each directory on the way to
    /// `path` (itself included) that this user cannot pass through, so a child running as it
    /// can reach `path`. Returns what it changed, from `/` down; nothing when all is reachable.
    ///
    /// The bit is the one the kernel checks for this user: the owner's when it owns the
    /// directory, the group's when the directory's group is its primary group (a child started
    /// from root keeps no supplementary groups), the others' otherwise. Directories not created
    /// yet are skipped. Symbolic links are followed: the real path is checked too.
    pub fn grant_traverse(&self, path: &Path) -> std::io::Result<Vec<Grant>> {
        let mut dirs: Vec<PathBuf> = path.ancestors().map(Path::to_path_buf).collect();
        if let Ok(real) = std::fs::canonicalize(path) {
            dirs.extend(real.ancestors().map(Path::to_path_buf));
        }
        dirs.reverse();
        let mut grants = Vec::new();
        for dir in dirs {
            let meta = match std::fs::metadata(&dir) {
                Ok(m) if m.is_dir() => m,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            let (bit, class) = if meta.uid() == self.uid {
                (0o100, "u+x")
            } else if meta.gid() == self.gid {
                (0o010, "g+x")
            } else {
                (0o001, "o+x")
            };
            let mode = meta.permissions().mode();
            if mode & bit != 0 {
                continue;
            }
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode | bit))?;
            grants.push(Grant { dir, bit: class });
        }
        Ok(grants)
    }
}

/// A search bit [`User::grant_traverse`] added to a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub dir: PathBuf,
    /// `u+x`, `g+x` or `o+x`, as `chmod` spells it.
    pub bit: &'static str,
}

impl std::fmt::Display for Grant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.bit, self.dir.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_traverse_adds_only_the_missing_search_bits_once() {
        let base = std::env::temp_dir().join(format!("procs-grant-{}", std::process::id()));
        let inner = base.join("a").join("b");
        let made = std::fs::create_dir_all(&inner);
        assert!(made.is_ok(), "{made:?}");
        let private = std::fs::Permissions::from_mode(0o700);
        for dir in [&base, &base.join("a")] {
            assert!(std::fs::set_permissions(dir, private.clone()).is_ok());
        }
        assert!(std::fs::set_permissions(&inner, std::fs::Permissions::from_mode(0o750)).is_ok());
        // Owns none of them and is in none of their groups: only the others' bit helps.
        let nobody = User {
            uid: 65534,
            gid: 65534,
        };
        let target = inner.join("not-yet-created");

        let grants = nobody.grant_traverse(&target).unwrap_or_default();
        let changed: Vec<String> = grants.iter().map(ToString::to_string).collect();
        let expected = [&base, &base.join("a"), &inner].map(|d| format!("o+x {}", d.display()));
        assert_eq!(changed, expected);
        let mode = |d: &Path| {
            std::fs::metadata(d)
                .map(|m| m.permissions().mode() & 0o777)
                .ok()
        };
        assert_eq!(mode(&base), Some(0o701));
        assert_eq!(mode(&base.join("a")), Some(0o701));
        assert_eq!(mode(&inner), Some(0o751));
        assert_eq!(nobody.grant_traverse(&target).ok(), Some(vec![]));
        let _ = std::fs::remove_dir_all(&base);
    }
}
