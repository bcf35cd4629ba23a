//! `--protocol socketio`: the same scenarios and accounting against the benchmark's peer, a
//! Socket.IO 4 chat server (bench/peers/socketio). No REST setup: users and channels are
//! synthetic ids from a random base per run (user `i` is `base + i + 1`, channel `j` is
//! `base + j + 1`), so every run starts on fresh channels whose seqs begin at 1, and the
//! membership is the one the chat protocol's setup creates.

pub mod conn;
pub mod events;
pub mod packet;

use rand::Rng;

use crate::{
    args::Args,
    setup::{memberships, plan_sockets, World},
};

/// The run's users, channels and socket plans, without asking the server anything.
pub fn world(args: &Args) -> World {
    let shape = args.shape();
    let base: i64 = rand::rng().random_range(1..1_000_000) * 1_000_000;
    let channels: Vec<(i64, Vec<usize>)> = memberships(shape.users, shape.channels)
        .into_iter()
        .enumerate()
        .map(|(j, m)| (base + j as i64 + 1, m))
        .collect();
    let urls = args.ws_urls();
    let layout = plan_sockets(args, &channels, |i, u| {
        let urls = (0..urls.len())
            .map(|k| urls[(i + k) % urls.len()].clone())
            .collect();
        (base + u as i64 + 1, urls)
    });
    World {
        prefix: format!("sio{base}"),
        sessions: Vec::new(),
        channels,
        plans: layout.plans,
        channel_sockets: layout.channel_sockets,
        senders: layout.senders,
    }
}
