//! The Makefile runs the binaries cargo built, wherever `CARGO_TARGET_DIR` puts them, and
//! `make loadtest` runs the load generator of that same build without cargo.
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `make args` at the workspace root as a user would, with nothing inherited from an
/// outer make or cargo; returns whether it succeeded and its stdout lines.
fn make(args: &[&str], env: &[(&str, &str)]) -> (bool, Vec<String>) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut cmd = Command::new("make");
    cmd.arg("--no-print-directory").args(args).current_dir(root);
    for var in [
        "CARGO_TARGET_DIR",
        "CARGO",
        "MAKEFLAGS",
        "MFLAGS",
        "MAKELEVEL",
    ] {
        cmd.env_remove(var);
    }
    let out = cmd.envs(env.iter().copied()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    (
        out.status.success(),
        stdout.lines().map(str::to_owned).collect(),
    )
}

/// A `cargo` that only prints its arguments and the target dir it was given.
fn fake_cargo() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fake-cargo-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("cargo");
    std::fs::write(
        &path,
        "#!/bin/sh\necho \"cargo $* into=${CARGO_TARGET_DIR:-default}\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[test]
fn make_run_builds_into_and_runs_from_cargo_target_dir() {
    let cargo = fake_cargo();
    let cargo = cargo.to_str().unwrap();
    let as_var = ["CARGO_TARGET_DIR=/x/tgt"];
    // Given on the make command line or in the environment, the same directory both times.
    for (args, env) in [
        (&as_var[..], &[][..]),
        (&[][..], &[("CARGO_TARGET_DIR", "/x/tgt")][..]),
    ] {
        let (ok, lines) = make(&[&["-n", "run"], args].concat(), env);
        assert!(ok, "{lines:?}");
        assert_eq!(
            lines.last().map(String::as_str),
            Some("/x/tgt/release/cluster run")
        );
        assert!(
            !lines.iter().any(|l| l.contains("target/release")),
            "{lines:?}"
        );
        let with_cargo = format!("CARGO={cargo}");
        let (ok, built) = make(&[&["build", with_cargo.as_str()], args].concat(), env);
        assert!(ok, "{built:?}");
        assert_eq!(
            built.last().map(String::as_str),
            Some("cargo build --release --workspace --bins into=/x/tgt")
        );
    }
    let (ok, lines) = make(&["-n", "run"], &[]);
    assert!(ok, "{lines:?}");
    assert_eq!(
        lines.last().map(String::as_str),
        Some("target/release/cluster run")
    );
    let _ = std::fs::remove_dir_all(Path::new(cargo).parent().unwrap());
}

#[test]
fn make_loadtest_runs_the_release_binary_of_make_build_without_cargo() {
    let args = "ARGS=--scenario chat --duration 30s";
    let (ok, lines) = make(&["-n", "loadtest", "CARGO_TARGET_DIR=/x/tgt", args], &[]);
    assert!(ok, "{lines:?}");
    assert_eq!(
        lines.last().map(String::as_str),
        Some("/x/tgt/release/loadtest --scenario chat --duration 30s")
    );
    assert!(!lines.iter().any(|l| l.contains("cargo")), "{lines:?}");

    let missing = std::env::temp_dir().join(format!("no-target-{}", uuid::Uuid::new_v4().simple()));
    let dir = format!("CARGO_TARGET_DIR={}", missing.display());
    let (ok, lines) = make(&["loadtest", &dir], &[]);
    assert!(!ok, "a missing binary fails: {lines:?}");
}
