//! Children that die with this process: forked from one long-lived thread with
//! `PR_SET_PDEATHSIG`, signalled by their `Child`, and awaited with a deadline.
#![allow(unsafe_code)]

use std::io;
use std::process::{Child, Command};
use std::sync::mpsc;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

type Job = (Command, mpsc::Sender<io::Result<Child>>);

/// The spawner thread's queue, or why that thread could not start.
static SPAWNER: OnceLock<Result<mpsc::Sender<Job>, (io::ErrorKind, String)>> = OnceLock::new();

/// Which process group a child joins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// Ours: a Ctrl-C at the terminal reaches the child too (the test harness).
    Parent,
    /// Its own: a Ctrl-C at the terminal reaches only us, so we can stop the children in the
    /// order we choose (the launcher stops the edges first).
    Own,
}

/// Spawns `cmd` so that the kernel SIGKILLs it when this process dies, even by SIGKILL.
///
/// `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits, not the process,
/// so every child is forked by one thread that lives as long as the process.
pub fn spawn(mut cmd: Command, group: Group) -> io::Result<Child> {
    use std::os::unix::process::CommandExt;
    if group == Group::Own {
        cmd.process_group(0);
    }
    let parent = libc::pid_t::try_from(std::process::id())
        .map_err(|_| io::Error::other("pid out of range"))?;
    // SAFETY: runs in the forked child before exec; prctl and getppid are async-signal-safe
    // and touch no memory of the parent.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            // We may have died between fork and prctl: then the child has been handed to
            // init (or a subreaper) already and the death signal will never come.
            if libc::getppid() != parent {
                return Err(io::Error::other("parent exited during spawn"));
            }
            Ok(())
        });
    }
    let tx = SPAWNER
        .get_or_init(start_spawner)
        .as_ref()
        .map_err(|(kind, msg)| io::Error::new(*kind, msg.clone()))?;
    let gone = || io::Error::other("spawner thread gone");
    let (rtx, rrx) = mpsc::channel();
    tx.send((cmd, rtx)).map_err(|_| gone())?;
    rrx.recv().map_err(|_| gone())?
}

fn start_spawner() -> Result<mpsc::Sender<Job>, (io::ErrorKind, String)> {
    let (tx, rx) = mpsc::channel::<Job>();
    std::thread::Builder::new()
        .name("procs-spawner".into())
        .spawn(move || {
            for (mut cmd, reply) in rx {
                let _ = reply.send(cmd.spawn());
            }
            // The sender lives in a static and is never dropped; stay alive regardless, since
            // this thread's exit would kill every child.
            loop {
                std::thread::park();
            }
        })
        .map_err(|e| (e.kind(), format!("cannot start the spawner thread: {e}")))?;
    Ok(tx)
}

/// Sends `sig` to `child`.
pub fn signal(child: &Child, sig: i32) -> io::Result<()> {
    let pid =
        libc::pid_t::try_from(child.id()).map_err(|_| io::Error::other("pid out of range"))?;
    // SAFETY: kill has no memory effects; pid is our own child, not yet reaped by us.
    if unsafe { libc::kill(pid, sig) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Waits up to `timeout` for `child` to exit; true when it did.
pub fn wait_for_exit(child: &mut Child, timeout: Duration) -> io::Result<bool> {
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

/// True while process `pid` exists (ours or not).
pub fn alive(pid: libc::pid_t) -> bool {
    // SAFETY: signal 0 only checks that the process exists; no memory is touched.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Runs `f` when the process exits normally: the way to stop a server held in a static,
/// which is never dropped.
pub fn at_exit(f: extern "C" fn()) {
    // SAFETY: registers a plain function without arguments; libc runs it once, at exit.
    unsafe {
        libc::atexit(f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spawned_child_runs_signalled_and_awaited() {
        let child = spawn(sleep(), Group::Own);
        let mut child = child.unwrap_or_else(|e| panic!("spawn sleep: {e}"));
        assert!(!wait_for_exit(&mut child, Duration::from_millis(100)).unwrap_or(true));
        assert!(signal(&child, libc::SIGTERM).is_ok());
        assert!(wait_for_exit(&mut child, Duration::from_secs(5)).unwrap_or(false));
    }

    #[test]
    fn own_group_child_leads_a_group_and_parent_group_child_joins_ours() {
        let ours = pgrp(std::process::id());
        for (group, leads) in [(Group::Own, true), (Group::Parent, false)] {
            let child = spawn(sleep(), group);
            let mut child = child.unwrap_or_else(|e| panic!("spawn sleep: {e}"));
            let expected = if leads { Some(child.id()) } else { ours };
            assert_eq!(pgrp(child.id()), expected, "{group:?}");
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn sleep() -> Command {
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        cmd
    }

    /// The process group of `pid`, from `/proc/<pid>/stat` (`pid (comm) state ppid pgrp ...`).
    fn pgrp(pid: u32) -> Option<u32> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        stat.rsplit(')')
            .next()?
            .split_whitespace()
            .nth(2)?
            .parse()
            .ok()
    }
}
