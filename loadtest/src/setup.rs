//! Setup over REST: register and log in users, create channels, join members, and plan sockets.

use std::{collections::HashMap, net::IpAddr, sync::Arc};

use anyhow::Context;
use futures_util::{stream, StreamExt, TryStreamExt};
use rand::Rng;

use crate::{
    api::{Api, Session},
    args::{Args, Scenario},
    conn::Plan,
};

/// Everything the run needs once the deployment knows its users and channels.
#[derive(Debug)]
pub struct World {
    pub prefix: String,
    pub sessions: Vec<Session>,
    /// Channel ids, and the user indices that are members of each.
    pub channels: Vec<(i64, Vec<usize>)>,
    pub plans: Vec<Plan>,
    /// Sockets per channel id.
    pub channel_sockets: HashMap<i64, u64>,
    /// Socket indices of the members of each channel, in `channels` order.
    pub senders: Vec<Vec<usize>>,
}

/// A random lowercase prefix so every run has its own user and channel names.
pub fn run_prefix() -> String {
    let mut rng = rand::rng();
    (0..6)
        .map(|_| char::from(b'a' + rng.random_range(0..26u8)))
        .collect()
}

/// HTTP clients, one per source address (up to 16), so per-address login limits spread out.
fn clients(args: &Args) -> anyhow::Result<Vec<Api>> {
    let n = args.source_ips.map_or(1, |r| r.len().min(16) as usize);
    (0..n)
        .map(|i| {
            let src = args.source_ips.map(|r| IpAddr::V4(r.nth(i)));
            Api::new(&args.target, src).context("building the HTTP client")
        })
        .collect()
}

/// Registers the users, creates the channels, joins their members and plans every socket.
pub async fn build(args: &Args, progress: &indicatif::ProgressBar) -> anyhow::Result<World> {
    let shape = args.shape();
    let prefix = run_prefix();
    let apis = Arc::new(clients(args)?);
    let conc = args.setup_concurrency.max(1);

    progress.set_message(format!("registering {} users", shape.users));
    let sessions: Vec<Session> = stream::iter(0..shape.users)
        .map(|i| {
            let apis = apis.clone();
            let name = format!("lt{prefix}{i}");
            let pw = args.password.clone();
            let pb = progress.clone();
            async move {
                let s = apis[i % apis.len()]
                    .register_and_login(&name, &pw)
                    .await
                    .with_context(|| format!("registering {name}"))?;
                pb.inc(1);
                anyhow::Ok(s)
            }
        })
        .buffered(conc)
        .try_collect()
        .await?;

    let nch = shape.channels;
    progress.set_message(format!("creating {nch} channels"));
    let members = memberships(shape.users, nch);
    let ids: Vec<i64> = stream::iter(0..nch)
        .map(|c| {
            let api = apis[c % apis.len()].clone();
            let token = sessions[c % shape.users].token.clone();
            let name = format!("lt-{prefix}-{c}");
            async move {
                let ch = api.create_channel(&token, &name).await?;
                anyhow::Ok(ch.id)
            }
        })
        .buffered(conc)
        .try_collect()
        .await?;
    let joins: Vec<(i64, usize)> = ids
        .iter()
        .zip(&members)
        .flat_map(|(&id, m)| m.iter().skip(1).map(move |&u| (id, u)))
        .collect();
    progress.set_message(format!("joining {} members", joins.len()));
    stream::iter(joins)
        .map(|(id, u)| {
            let api = apis[u % apis.len()].clone();
            let token = sessions[u].token.clone();
            async move { api.join(&token, id).await }
        })
        .buffer_unordered(conc)
        .try_collect::<Vec<()>>()
        .await?;

    let channels: Vec<(i64, Vec<usize>)> = ids.into_iter().zip(members).collect();
    let urls = args.ws_urls();
    let layout = plan_sockets(args, &channels, |i, u| {
        let urls = (0..urls.len())
            .map(|k| format!("{}?token={}", urls[(i + k) % urls.len()], sessions[u].token))
            .collect();
        (sessions[u].user.id, urls)
    });
    Ok(World {
        prefix,
        sessions,
        channels,
        plans: layout.plans,
        channel_sockets: layout.channel_sockets,
        senders: layout.senders,
    })
}

/// Who is in which channel: channel `c` gets user `c % users` first (its creator), then every
/// other user `u` with `u % channels == c`.
pub fn memberships(users: usize, channels: usize) -> Vec<Vec<usize>> {
    let users = users.max(1);
    let mut members: Vec<Vec<usize>> = (0..channels).map(|c| vec![c % users]).collect();
    if channels > 0 {
        for u in 0..users {
            let c = u % channels;
            if members[c][0] != u {
                members[c].push(u);
            }
        }
    }
    members
}

/// Every socket of a run and who it sends for, whatever the protocol.
#[derive(Debug)]
pub struct Layout {
    pub plans: Vec<Plan>,
    /// Sockets per channel id.
    pub channel_sockets: HashMap<i64, u64>,
    /// Socket indices of the members of each channel, in `channels` order.
    pub senders: Vec<Vec<usize>>,
}

/// Plans every socket over `channels` (id and member users): socket `i` belongs to user
/// `i / sockets_per_user` (`i % users` in the connect scenario), and `socket(i, user)` gives its
/// user id and URLs.
pub fn plan_sockets(
    args: &Args,
    channels: &[(i64, Vec<usize>)],
    socket: impl Fn(usize, usize) -> (i64, Vec<String>),
) -> Layout {
    let shape = args.shape();
    let mut user_channels: Vec<Vec<i64>> = vec![Vec::new(); shape.users];
    for (id, m) in channels {
        for &u in m {
            user_channels[u].push(*id);
        }
    }
    let total = args.total_sockets();
    let mut plans = Vec::with_capacity(total);
    let mut user_sockets: Vec<Vec<usize>> = vec![Vec::new(); shape.users];
    for i in 0..total {
        let u = if args.scenario == Scenario::Connect {
            i % shape.users
        } else {
            i / shape.sockets_per_user
        };
        user_sockets[u].push(i);
        let chans = user_channels[u].clone();
        let auto = match args.scenario {
            Scenario::Durable => chans.first().copied(),
            _ => None,
        };
        let (user_id, urls) = socket(i, u);
        plans.push(Plan {
            index: i,
            user_id,
            urls,
            source: args.source_ips.map(|r| IpAddr::V4(r.nth(i))),
            channels: chans,
            auto,
        });
    }
    let user_sockets = &user_sockets;
    let mut channel_sockets = HashMap::new();
    let mut senders = Vec::with_capacity(channels.len());
    for (id, m) in channels {
        // Interleaved by user, so consecutive sends come from different users (rate limits).
        let most = m.iter().map(|&u| user_sockets[u].len()).max().unwrap_or(0);
        let socks: Vec<usize> = (0..most)
            .flat_map(|k| {
                m.iter()
                    .filter_map(move |&u| user_sockets[u].get(k).copied())
            })
            .collect();
        channel_sockets.insert(*id, socks.len() as u64);
        senders.push(socks);
    }
    Layout {
        plans,
        channel_sockets,
        senders,
    }
}
