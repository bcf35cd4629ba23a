//! End-to-end through HAProxy with three edges started by the launcher library: round-robin
//! placement, edge crash, edge drain, rolling restart, and draining through the runtime API.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::member::Traffic;
use common::{assert_all_delivered, Member, WAIT};

const EVERY: Duration = Duration::from_millis(150);

/// How many members sit on each edge.
fn placement(members: &[Member]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for x in members {
        *m.entry(x.edge()).or_insert(0) += 1;
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_land_on_edges_round_robin_and_chat() {
    let t = common::start(3).await;
    let (channel, members) = t.room("rr", 6).await;
    let first: Vec<String> = members[..3].iter().map(Member::edge).collect();
    let mut distinct = first.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        distinct,
        vec!["edge-1", "edge-2", "edge-3"],
        "first three: {first:?}"
    );
    let expected: BTreeMap<String, usize> = [("edge-1", 2), ("edge-2", 2), ("edge-3", 2)]
        .map(|(e, n)| (e.to_owned(), n))
        .into();
    assert_eq!(placement(&members), expected);
    for round in 0..5 {
        for m in &members {
            m.send(channel, &format!("{} round {round}", m.name));
        }
    }
    for m in &members {
        m.wait_acked().await;
    }
    assert_all_delivered(&members, channel).await;
    for m in &members {
        assert_eq!(m.received(channel).len(), 30, "{}", m.name);
        assert_eq!(m.edges().len(), 1, "{} reconnected", m.name);
    }
}

/// Kills edge `i` with `signal` under steady traffic; returns the exit status and how long
/// the edge took to exit.
async fn kill_under_traffic(signal: i32) -> (common::TestCluster, Vec<Member>, i64) {
    let t = common::start(3).await;
    let (channel, members) = t
        .room(
            if signal == libc::SIGKILL {
                "kill"
            } else {
                "drain"
            },
            6,
        )
        .await;
    let traffic = Traffic::start(&members, channel, EVERY);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut t = t;
    let started = Instant::now();
    let status = t.cluster.kill_edge(1, signal).await.unwrap();
    let took = started.elapsed();
    if signal == libc::SIGTERM {
        assert!(status.success(), "edge-2 exit after SIGTERM: {status}");
        assert!(took < Duration::from_secs(10), "edge-2 drained in {took:?}");
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    traffic.stop().await;
    for m in &members {
        m.wait_acked().await;
    }
    assert_all_delivered(&members, channel).await;
    (t, members, channel)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acked_messages_survive_edge_kill() {
    let (_t, members, _) = kill_under_traffic(libc::SIGKILL).await;
    let moved: Vec<&Member> = members
        .iter()
        .filter(|m| m.edges()[0] == "edge-2")
        .collect();
    assert_eq!(moved.len(), 2);
    for m in moved {
        assert_ne!(m.edge(), "edge-2", "{} still on the killed edge", m.name);
        assert_eq!(
            m.closes(),
            vec![None],
            "{}: a killed edge sends no close",
            m.name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_an_edge_with_1012_and_loses_nothing() {
    let (_t, members, _) = kill_under_traffic(libc::SIGTERM).await;
    for m in members.iter().filter(|m| m.edges()[0] == "edge-2") {
        assert_eq!(m.closes(), vec![Some(1012)], "{}", m.name);
        assert_ne!(
            m.edge(),
            "edge-2",
            "{} came back to the draining edge",
            m.name
        );
    }
    for m in members.iter().filter(|m| m.edges()[0] != "edge-2") {
        assert!(m.closes().is_empty(), "{} lost its socket", m.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restart_under_traffic_delivers_every_acked_message() {
    let mut t = common::start(3).await;
    let (channel, members) = t.room("roll", 6).await;
    let traffic = Traffic::start(&members, channel, EVERY);
    tokio::time::sleep(Duration::from_secs(1)).await;
    for i in 0..3 {
        let name = t.cluster.edge_name(i);
        let status = t.cluster.kill_edge(i, libc::SIGTERM).await.unwrap();
        assert!(status.success(), "{name} exit: {status}");
        t.cluster.start_edge(i).await.unwrap();
        t.cluster
            .wait_haproxy_status("edges", &name, "UP", WAIT)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    traffic.stop().await;
    for m in &members {
        m.wait_acked().await;
    }
    assert_all_delivered(&members, channel).await;
    for m in &members {
        assert!(
            m.closes().iter().all(|c| *c == Some(1012)),
            "{}: {:?}",
            m.name,
            m.closes()
        );
        assert!(!m.closes().is_empty(), "{} was never moved", m.name);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_api_drain_sends_new_clients_elsewhere_and_keeps_sockets() {
    let t = common::start(3).await;
    let (channel, members) = t.room("rt", 3).await;
    let drained = members.iter().position(|m| m.edge() == "edge-2").unwrap();
    let answer = t
        .cluster
        .haproxy_command("set server edges/edge-2 state drain")
        .unwrap();
    assert_eq!(answer.trim(), "", "runtime API answered {answer:?}");
    t.cluster
        .wait_haproxy_status("edges", "edge-2", "DRAIN", WAIT)
        .await
        .unwrap();
    let mut newcomers = Vec::new();
    for i in 0..6 {
        let (_, token) = t.user(&format!("rtnew{i}")).await;
        t.join(&token, channel).await;
        newcomers.push(Member::connect(&t.cluster.ws_url(), format!("rtnew{i}"), token).await);
    }
    let expected: BTreeMap<String, usize> = [("edge-1", 3), ("edge-3", 3)]
        .map(|(e, n)| (e.to_owned(), n))
        .into();
    assert_eq!(placement(&newcomers), expected);
    // The socket on the drained edge stays and still chats both ways.
    members[drained].send(channel, "still here");
    newcomers[0].send(channel, "welcome");
    members[drained].wait_acked().await;
    newcomers[0].wait_acked().await;
    let mut all = members;
    all.extend(newcomers);
    assert_all_delivered(&all, channel).await;
    assert_eq!(all[drained].edges(), vec!["edge-2"]);
    assert!(
        all[drained].closes().is_empty(),
        "the drained edge's socket was closed"
    );
}

/// One `curl -sN` reading `/sse` through HAProxy: each event as (name, id, data).
struct Curl {
    child: tokio::process::Child,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

impl Curl {
    fn open(url: &str, last_event_id: Option<&str>) -> Curl {
        let mut cmd = tokio::process::Command::new("curl");
        cmd.args(["-sSN", "--max-time", "60", url]);
        if let Some(id) = last_event_id {
            cmd.args(["-H", &format!("Last-Event-ID: {id}")]);
        }
        let mut child = cmd
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        use tokio::io::AsyncBufReadExt;
        Curl {
            child,
            lines: tokio::io::BufReader::new(out).lines(),
        }
    }

    async fn event(&mut self) -> (String, Option<String>, serde_json::Value) {
        let (mut name, mut id, mut data) = (String::from("message"), None, String::new());
        loop {
            let line = tokio::time::timeout(WAIT, self.lines.next_line())
                .await
                .expect("no event in time")
                .unwrap()
                .expect("curl's stream ended");
            if line.is_empty() && !data.is_empty() {
                return (name, id, serde_json::from_str(&data).unwrap());
            }
            match line.split_once(": ") {
                Some(("event", v)) => name = v.to_owned(),
                Some(("id", v)) => id = Some(v.to_owned()),
                Some(("data", v)) => data.push_str(v),
                _ => {} // a heartbeat comment, or the blank line after it
            }
        }
    }

    /// Seqs of the next `n` messages of `channel`, with the last event id seen.
    async fn messages(&mut self, channel: i64, n: usize) -> (Vec<i64>, Option<String>) {
        let (mut seqs, mut last) = (Vec::new(), None);
        while seqs.len() < n {
            let (name, id, data) = self.event().await;
            if name == "message" && data["message"]["channel_id"] == channel {
                seqs.push(data["message"]["seq"].as_i64().unwrap());
                last = id;
            }
        }
        (seqs, last)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_through_haproxy_with_curl_resumes_on_the_other_edge_with_last_event_id() {
    let t = common::start(2).await;
    let (channel, members) = t.room("sse", 1).await;
    let sender = &members[0];
    let (_, token) = t.user("reader").await;
    t.join(&token, channel).await;
    let url = format!("{}/sse?token={token}", t.cluster.http_url());

    let mut first = Curl::open(&url, None);
    let (name, _, ready) = first.event().await;
    assert_eq!(name, "ready");
    for i in 0..3 {
        sender.send(channel, &format!("live {i}"));
    }
    let (seqs, last_id) = first.messages(channel, 3).await;
    assert_eq!(seqs, vec![1, 2, 3]);
    first.child.kill().await.unwrap();
    for i in 3..6 {
        sender.send(channel, &format!("missed {i}"));
    }
    sender.wait_acked().await;

    let mut second = Curl::open(&url, last_id.as_deref());
    let (name, _, again) = second.event().await;
    assert_eq!(name, "ready");
    assert_ne!(
        again["edge"], ready["edge"],
        "round robin gave the same edge"
    );
    sender.send(channel, "live again");
    let (seqs, _) = second.messages(channel, 4).await;
    assert_eq!(seqs, vec![4, 5, 6, 7], "resumed from {last_id:?}");
}
