//! Child processes that die with the launcher: spawned from one long-lived thread with
//! `PR_SET_PDEATHSIG`, signalled by pid, and stopped with a deadline.
#![allow(unsafe_code)]

use std::process::{Child, Command};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

type Job = (Command, mpsc::Sender<std::io::Result<Child>>);

static SPAWNER: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();

/// Spawns `cmd` so that the kernel SIGKILLs it when the launcher dies, even by SIGKILL.
///
/// `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits, not the process,
/// so every child is forked by one thread that lives as long as the process.
///
/// Each child gets its own process group, so a Ctrl-C at the terminal reaches only the
/// launcher, which then stops the children in order (edges first).
pub fn spawn(mut cmd: Command) -> std::io::Result<Child> {
    use std::os::unix::process::CommandExt;
    cmd.process_group(0);
    // SAFETY: runs in the forked child before exec; prctl and getppid are async-signal-safe
    // and touch no memory of the parent. std applies `uid`/`gid` before these closures, so
    // the death signal survives the switch to the `postgres` user.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl: then we are orphaned already.
            if libc::getppid() == 1 {
                return Err(std::io::Error::other("launcher exited during spawn"));
            }
            Ok(())
        });
    }
    let tx = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        let spawned = std::thread::Builder::new()
            .name("cluster-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
                // The sender lives in a static and is never dropped; stay alive regardless.
                loop {
                    std::thread::park();
                }
            });
        if let Err(e) = spawned {
            eprintln!("cluster: cannot start the spawner thread: {e}");
        }
        Mutex::new(tx)
    });
    let (rtx, rrx) = mpsc::channel();
    tx.lock()
        .map_err(|_| std::io::Error::other("spawner lock poisoned"))?
        .send((cmd, rtx))
        .map_err(|_| std::io::Error::other("spawner thread gone"))?;
    rrx.recv()
        .map_err(|_| std::io::Error::other("spawner thread gone"))?
}

/// Sends `sig` to the process `pid` (a child we started).
pub fn signal(pid: u32, sig: i32) -> std::io::Result<()> {
    let pid = i32::try_from(pid).map_err(|_| std::io::Error::other("pid out of range"))?;
    // SAFETY: kill has no memory effects; pid is one of our own children.
    if unsafe { libc::kill(pid, sig) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The uid and gid of `name` when we run as root (initdb and postgres refuse root).
pub fn drop_to(name: &str) -> Option<(u32, u32)> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let cname = std::ffi::CString::new(name).ok()?;
    // SAFETY: getpwnam returns null or a pointer into static storage, read at once below.
    let pw = unsafe { libc::getpwnam(cname.as_ptr()) };
    if pw.is_null() {
        return None;
    }
    // SAFETY: pw is non-null and points to a valid passwd entry.
    unsafe { Some(((*pw).pw_uid, (*pw).pw_gid)) }
}

/// Waits up to `timeout` for the child to exit; true when it did.
pub fn wait_for_exit(child: &mut Child, timeout: Duration) -> std::io::Result<bool> {
    let deadline = Instant::now() + timeout;
    loop {
        if child.try_wait()?.is_some() {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
