//! The progress bar and the once-a-second throughput samples.

use std::{sync::Arc, time::Duration};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{
    args::Args,
    state::Shared,
    stats::{Counters, Second},
};

/// A bar on stderr, or a hidden one with `--no-progress`.
pub fn bar(args: &Args, len: u64) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if args.no_progress {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    if let Ok(style) =
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Starts a new phase on the bar.
pub fn phase(bar: &ProgressBar, len: u64, msg: String) {
    bar.set_length(len);
    bar.set_position(0);
    bar.set_message(msg);
}

/// A line on stderr marking a phase (`loadtest: sending`), above the bar if there is one.
pub fn note(bar: &ProgressBar, msg: &str) {
    if bar.is_hidden() {
        eprintln!("loadtest: {msg}");
    } else {
        bar.println(format!("loadtest: {msg}"));
    }
}

/// Samples the counters every second while the run lasts.
#[derive(Debug)]
pub struct Sampler {
    stop: CancellationToken,
    task: JoinHandle<Vec<Second>>,
}

/// Starts sampling; the bar counts seconds of `duration`.
pub fn sample(shared: Arc<Shared>, bar: ProgressBar, duration: Duration) -> Sampler {
    let stop = CancellationToken::new();
    phase(&bar, duration.as_secs().max(1), String::new());
    let token = stop.clone();
    let task = tokio::spawn(async move {
        let mut out = Vec::new();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        let c = &shared.counters;
        let mut prev = Second::default();
        // Bounded: one sample a second, at most a day.
        for t in 1..=86_400u64 {
            tokio::select! {
                _ = token.cancelled() => break,
                _ = tick.tick() => {}
            }
            let now = Second {
                t,
                connected: Counters::get(&c.connected),
                sends: Counters::get(&c.sends),
                acks: Counters::get(&c.acks),
                deliveries: Counters::get(&c.deliveries),
                max_latency_us: c
                    .max_latency_us
                    .swap(0, std::sync::atomic::Ordering::Relaxed),
            };
            let s = Second {
                t,
                connected: now.connected,
                sends: now.sends - prev.sends,
                acks: now.acks - prev.acks,
                deliveries: now.deliveries - prev.deliveries,
                max_latency_us: now.max_latency_us,
            };
            bar.set_position(t);
            bar.set_message(format!(
                "{} sockets, {} sends/s, {} acks/s, {} deliveries/s",
                s.connected, s.sends, s.acks, s.deliveries
            ));
            out.push(s);
            prev = now;
        }
        out
    });
    Sampler { stop, task }
}

impl Sampler {
    /// Stops sampling and returns the per-second series.
    pub async fn finish(self) -> Vec<Second> {
        self.stop.cancel();
        self.task.await.unwrap_or_default()
    }
}
