//! Running servers as the `postgres` user when we are root: `initdb` and `postgres` refuse
//! to run as root.
#![allow(unsafe_code)]

use std::path::Path;
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
}
