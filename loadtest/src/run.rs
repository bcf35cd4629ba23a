//! One run: set up, connect every socket at the connect rate, drive the scenario, wait the grace
//! period, close, and add everything up into a [`Report`].

use std::{
    collections::HashMap,
    sync::{atomic::AtomicBool, Arc},
    time::{Duration, Instant},
};

use tokio::{
    sync::{mpsc, Semaphore},
    task::JoinSet,
};
use tokio_util::sync::CancellationToken;

use crate::{
    accounting::{tally_tracks, Acked, Tally},
    args::{Args, Protocol, Scenario},
    checker,
    conn::{self, Cmd, Outcome},
    edges, progress,
    report::{Changes, Connections, Report, Sends},
    setup, socketio,
    state::Shared,
    stats::{Counters, Latency, Percentiles},
};

/// Commands queued per socket before the scheduler skips it.
const SOCKET_QUEUE: usize = 256;

/// Runs the whole load test described by `args`.
pub async fn run(args: &Args) -> anyhow::Result<Report> {
    let nofile = raise_nofile_limit();
    let shape = args.shape();
    let total = args.total_sockets();
    let bar = progress::bar(args, shape.users as u64);
    progress::note(
        &bar,
        &format!("setup: {} users, {} channels", shape.users, shape.channels),
    );
    let world = match args.protocol {
        Protocol::Chat => setup::build(args, &bar).await?,
        Protocol::Socketio => {
            anyhow::ensure!(
                !args.resume,
                "--resume: the Socket.IO peer has no resume (--protocol socketio)"
            );
            anyhow::ensure!(
                args.scenario != Scenario::Mixed,
                "--scenario mixed: the Socket.IO peer has no edits, reactions or deletes"
            );
            socketio::world(args)
        }
    };

    let shared = Arc::new(Shared {
        counters: Counters::default(),
        e2e: Latency::default(),
        ack: Latency::default(),
        connect: Latency::default(),
        epoch: Instant::now(),
        channel_sockets: world.channel_sockets.clone(),
        start_sending: CancellationToken::new(),
        stop_sending: CancellationToken::new(),
        stop: CancellationToken::new(),
        resume: args.resume,
        max_reconnects: args.max_reconnects,
        batch: args.batch,
        pipeline: args.pipeline.max(1),
        mixed: args.scenario == Scenario::Mixed,
        size: args.size,
    });

    // Connect at the connect rate, at most `connect_concurrency` handshakes at once.
    let rss_before = edges::rss(args);
    progress::phase(&bar, total as u64, format!("connecting {total} sockets"));
    let gate = Arc::new(Semaphore::new(args.connect_concurrency.max(1)));
    let mut tasks = JoinSet::new();
    let mut handles = Vec::with_capacity(total);
    let connect_started = Instant::now();
    let pace = Duration::from_secs_f64(1.0 / args.connect_rate.max(1.0));
    for plan in world.plans.iter().cloned() {
        let due = connect_started + pace.mul_f64(plan.index as f64);
        tokio::time::sleep_until(due.into()).await;
        let Ok(permit) = gate.clone().acquire_owned().await else {
            break;
        };
        let (tx, rx) = mpsc::channel(SOCKET_QUEUE);
        let live = Arc::new(AtomicBool::new(false));
        handles.push((tx, live.clone()));
        match args.protocol {
            Protocol::Chat => tasks.spawn(conn::run(plan, shared.clone(), rx, live, permit)),
            Protocol::Socketio => {
                tasks.spawn(socketio::conn::run(plan, shared.clone(), rx, live, permit))
            }
        };
        bar.set_position(Counters::get(&shared.counters.connected));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while done_connecting(&shared) < total as u64 && Instant::now() < deadline {
        bar.set_position(done_connecting(&shared));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let connect_secs = connect_started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_after = edges::rss(args);
    progress::note(
        &bar,
        &format!(
            "connected {} of {total} sockets in {connect_secs:.1} s; sending for {:?}",
            Counters::get(&shared.counters.connected),
            args.duration
        ),
    );

    // Drive the scenario.
    let sampler = progress::sample(shared.clone(), bar.clone(), args.duration);
    let send_started = Instant::now();
    shared.start_sending.cancel();
    match args.scenario {
        Scenario::Chat | Scenario::Fanout | Scenario::Mixed => {
            schedule(
                &shared,
                &world.senders,
                &world.channels,
                &handles,
                shape.rate,
                args.duration,
            )
            .await
        }
        Scenario::Connect | Scenario::Durable => tokio::time::sleep(args.duration).await,
    }
    shared.stop_sending.cancel();
    let send_secs = send_started.elapsed().as_secs_f64();

    // Grace: until every send is answered and every expected delivery arrived, or the period ends.
    progress::note(&bar, "grace: waiting for acks and in-flight deliveries");
    let grace_end = Instant::now() + args.grace;
    while Instant::now() < grace_end {
        let c = &shared.counters;
        if Counters::get(&c.in_flight) == 0
            && Counters::get(&c.deliveries) >= Counters::get(&c.expected_live)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shared.stop.cancel();
    drop(handles);
    let mut outcomes: Vec<Outcome> = Vec::with_capacity(total);
    let join_deadline = tokio::time::sleep(Duration::from_secs(20));
    tokio::pin!(join_deadline);
    loop {
        tokio::select! {
            r = tasks.join_next() => match r {
                Some(Ok(o)) => outcomes.push(o),
                Some(Err(_)) => {}
                None => break,
            },
            _ = &mut join_deadline => { tasks.abort_all(); break; }
        }
    }
    let series = sampler.finish().await;
    bar.finish_and_clear();

    let mut acked = Acked::default();
    for o in &outcomes {
        for &(c, s) in &o.acked {
            acked.insert(c, s);
        }
    }
    let mut tally = Tally::default();
    let mut closed_by_server = HashMap::<String, u64>::new();
    let mut connect_errors = HashMap::<String, u64>::new();
    for o in &outcomes {
        tally_tracks(&mut tally, &acked, &o.tracks);
        if let Some(why) = &o.connect_error {
            *connect_errors.entry(why.clone()).or_default() += 1;
        }
        if let Some(why) = &o.closed_by_server {
            *closed_by_server.entry(why.clone()).or_default() += 1;
        }
    }
    let history = match &args.check_db {
        Some(url) => Some(checker::check(url, &acked, &tally).await?),
        None => None,
    };
    let c = &shared.counters;
    let connections = Connections {
        attempted: total as u64,
        connected: Counters::get(&c.connected),
        failed: Counters::get(&c.connect_failed),
        disconnects: Counters::get(&c.disconnects),
        reconnects: Counters::get(&c.reconnects),
        closed_by_server,
        connect_errors,
        connect_seconds: connect_secs,
        recovery_seconds: c.recovery_seconds(),
        connect_latency: Percentiles::of(&shared.connect.merged()),
    };
    let sends = Sends {
        sent: Counters::get(&c.sends),
        acked: Counters::get(&c.acks),
        acked_unique: acked.total(),
        unacked: outcomes.iter().map(|o| o.unacked).sum(),
        errors: Counters::get(&c.errors),
        retried: Counters::get(&c.rate_limited),
        skipped: Counters::get(&c.skipped),
        seconds: send_secs,
        acked_per_sec: acked.total() as f64 / send_secs.max(1e-9),
        changes: Changes {
            edits: Counters::get(&c.edits),
            reactions: Counters::get(&c.reactions),
            deletes: Counters::get(&c.deletes),
            delivered: Counters::get(&c.changes_delivered),
        },
    };
    let delivered_secs = (send_secs + args.grace.as_secs_f64()).max(1e-9);
    let mut report = Report {
        scenario: args.scenario,
        protocol: args.protocol,
        target: args.target.clone(),
        ws_urls: args.ws_urls(),
        run_prefix: world.prefix.clone(),
        shape,
        sockets: total as u64,
        duration_secs: args.duration.as_secs_f64(),
        resume: args.resume,
        nofile_limit: nofile,
        connections,
        sends,
        deliveries: tally,
        deliveries_per_sec: steady_rate(&series, |s| s.deliveries)
            .unwrap_or(tally.received as f64 / delivered_secs),
        latency: Percentiles::of(&shared.e2e.merged()),
        ack_latency: Percentiles::of(&shared.ack.merged()),
        throughput: series,
        memory: edges::Memory::between(rss_before, rss_after, Counters::get(&c.connected)),
        history,
        passed: false,
        failures: Vec::new(),
    };
    report.judge();
    Ok(report)
}

/// Median of the per-second counts while sending (the first and last second dropped), if the
/// run lasted long enough to have one.
fn steady_rate(
    series: &[crate::stats::Second],
    f: impl Fn(&crate::stats::Second) -> u64,
) -> Option<f64> {
    if series.len() < 3 {
        return None;
    }
    let mut v: Vec<u64> = series[1..series.len() - 1].iter().map(f).collect();
    v.sort_unstable();
    v.get(v.len() / 2).map(|x| *x as f64)
}

fn done_connecting(shared: &Shared) -> u64 {
    Counters::get(&shared.counters.connected) + Counters::get(&shared.counters.connect_failed)
}

/// Sends `rate` messages/s for `duration`: message k goes to channel `k % C`, from the channel's
/// members in turn (skipping sockets that are down or backed up).
async fn schedule(
    shared: &Shared,
    senders: &[Vec<usize>],
    channels: &[(i64, Vec<usize>)],
    handles: &[(mpsc::Sender<Cmd>, Arc<AtomicBool>)],
    rate: f64,
    duration: Duration,
) {
    if channels.is_empty() || rate <= 0.0 {
        tokio::time::sleep(duration).await;
        return;
    }
    let start = Instant::now();
    let mut next_sender = vec![0usize; channels.len()];
    let mut issued: u64 = 0;
    let mut tick = tokio::time::interval(Duration::from_millis(2));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    while start.elapsed() < duration {
        tick.tick().await;
        let due = (start.elapsed().as_secs_f64().min(duration.as_secs_f64()) * rate) as u64;
        // Never more than a quarter second of catch-up at once.
        let burst = ((rate / 4.0) as u64).max(1);
        let upto = due.min(issued + burst);
        while issued < upto {
            let c = (issued % channels.len() as u64) as usize;
            issued += 1;
            if !dispatch(&senders[c], &mut next_sender[c], channels[c].0, handles) {
                Counters::add(&shared.counters.skipped, 1);
            }
        }
    }
}

/// Gives one send to the next live member socket with room in its queue.
fn dispatch(
    members: &[usize],
    next: &mut usize,
    channel_id: i64,
    handles: &[(mpsc::Sender<Cmd>, Arc<AtomicBool>)],
) -> bool {
    for _ in 0..members.len() {
        let s = members[*next % members.len()];
        *next = next.wrapping_add(1);
        let Some((tx, live)) = handles.get(s) else {
            continue;
        };
        if live.load(std::sync::atomic::Ordering::Relaxed)
            && tx.try_send(Cmd::Send { channel_id }).is_ok()
        {
            return true;
        }
    }
    false
}

/// Raises the open-file soft limit to the hard limit; returns the limit now in force.
#[allow(unsafe_code)]
fn raise_nofile_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass, which lives on our stack.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 0;
        }
        if lim.rlim_cur < lim.rlim_max {
            let want = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                lim = want;
            }
        }
    }
    lim.rlim_cur
}
