//! `loadtest` binary: parse flags, run, print the table, write `--json`, exit non-zero on any
//! loss, duplicate or reorder.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = loadtest::Args::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("loadtest: starting the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let report = match rt.block_on(loadtest::run(&args)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("loadtest: {e:#}");
            return ExitCode::from(2);
        }
    };
    print!("{}", report.table());
    if let Some(path) = &args.json {
        let written = serde_json::to_string_pretty(&report)
            .map_err(std::io::Error::other)
            .and_then(|j| std::fs::write(path, j));
        if let Err(e) = written {
            eprintln!("loadtest: writing {}: {e}", path.display());
            return ExitCode::from(2);
        }
    }
    if report.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
