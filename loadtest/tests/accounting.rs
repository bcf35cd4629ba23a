//! The delivery accounting catches every loss, duplicate and reorder, and the percentiles and
//! flag parsers say what they should.
#![allow(clippy::unwrap_used)]

use chat_client::{Delivery, Incoming, Track};
use loadtest::{
    accounting::{tally_tracks, Acked, Tally},
    args::{parse_duration, parse_ip_range, Args},
    frames,
    stats::{Latency, Percentiles},
};
use std::{collections::HashMap, net::Ipv4Addr, time::Duration};

fn acked(channel: i64, seqs: impl IntoIterator<Item = i64>) -> Acked {
    let mut a = Acked::default();
    for s in seqs {
        a.insert(channel, s);
    }
    a
}

fn tally(track: Track, acked: &Acked) -> Tally {
    let mut t = Tally::default();
    tally_tracks(&mut t, acked, &HashMap::from([(7, track)]));
    t
}

#[test]
fn every_acked_seq_received_in_order_is_clean() {
    let mut t = Track::new(0);
    for s in 1..=100 {
        assert_eq!(t.on_message(s), Delivery::InOrder);
    }
    let r = tally(t, &acked(7, 1..=100));
    assert_eq!((r.expected, r.received, r.lost), (100, 100, 0));
    assert!(r.clean());
}

#[test]
fn a_gap_is_counted_as_lost() {
    let mut t = Track::new(0);
    for s in (1..=10).filter(|s| *s != 4 && *s != 9) {
        t.on_message(s);
    }
    let r = tally(t, &acked(7, 1..=10));
    assert_eq!((r.expected, r.received, r.lost), (10, 8, 2));
    assert!(!r.clean());
}

#[test]
fn a_repeated_seq_is_a_duplicate() {
    let mut t = Track::new(0);
    t.on_message(1);
    t.on_message(2);
    assert_eq!(t.on_message(2), Delivery::Duplicate);
    let r = tally(t, &acked(7, 1..=2));
    assert_eq!((r.received, r.duplicated, r.lost), (2, 1, 0));
    assert!(!r.clean());
}

#[test]
fn a_lower_seq_after_a_higher_one_is_out_of_order() {
    let mut t = Track::new(0);
    t.on_message(1);
    t.on_message(3);
    assert_eq!(t.on_message(2), Delivery::OutOfOrder);
    let r = tally(t, &acked(7, 1..=3));
    assert_eq!(
        (r.received, r.out_of_order, r.lost, r.duplicated),
        (3, 1, 0, 0)
    );
    assert!(!r.clean());
}

#[test]
fn seqs_before_the_socket_was_ready_are_not_expected() {
    let mut t = Track::new(50);
    assert_eq!(t.on_message(50), Delivery::BeforeStart);
    t.on_message(51);
    t.on_message(52);
    let r = tally(t, &acked(7, 1..=52));
    assert_eq!((r.expected, r.received, r.lost), (2, 2, 0));
}

#[test]
fn the_senders_own_ack_counts_as_its_delivery() {
    let mut t = Track::new(0);
    t.on_message(1);
    t.on_ack(2);
    t.on_message(3);
    let r = tally(t, &acked(7, 1..=3));
    assert_eq!(r.lost, 0);
    assert!(r.clean());
}

#[test]
fn unacked_deliveries_are_reported_but_not_expected() {
    let mut t = Track::new(0);
    t.on_message(1);
    t.on_message(2);
    let r = tally(t, &acked(7, [1]));
    assert_eq!((r.expected, r.received, r.unacked_deliveries), (1, 2, 1));
    assert!(r.clean());
}

#[test]
fn resume_replays_are_allowed_but_later_duplicates_are_not() {
    let mut t = Track::new(0);
    t.on_message(1);
    t.on_message(2);
    t.on_message(4);
    assert_eq!(t.contiguous(), 2);
    t.begin_replay(2);
    assert_eq!(t.on_message(3), Delivery::InOrder);
    assert_eq!(t.on_message(4), Delivery::Replayed);
    assert_eq!(t.on_message(5), Delivery::InOrder);
    t.end_replay();
    assert_eq!(t.on_message(5), Delivery::Duplicate);
    let r = tally(t, &acked(7, 1..=5));
    assert_eq!((r.lost, r.replayed, r.duplicated), (0, 1, 1));
}

#[test]
fn percentiles_come_from_the_histogram() {
    let l = Latency::default();
    for i in 1..=1000u64 {
        l.record(i as usize, i * 1000);
    }
    let p = Percentiles::of(&l.merged());
    assert_eq!(p.count, 1000);
    assert!((p.p50_ms - 500.0).abs() < 1.0, "{p:?}");
    assert!((p.p99_ms - 990.0).abs() < 1.0, "{p:?}");
    assert!((p.max_ms - 1000.0).abs() < 1.0, "{p:?}");
    assert_eq!(
        Percentiles::of(&Latency::default().merged()),
        Percentiles::default()
    );
}

#[test]
fn frames_carry_the_send_time_the_latency_needs() {
    let content = frames::content(123_456, 32);
    assert_eq!(content.len(), 32);
    assert_eq!(frames::sent_micros(&content), Some(123_456));
    assert_eq!(frames::sent_micros("hello"), None);
    let msg = format!(
        r#"{{"type":"message","message":{{"id":"1","channel_id":5,"seq":9,"sender_id":1,"sender":"a","content":"{content}","reply_to":null,"client_msg_id":"c","created_at":"2026-11-22T00:00:00Z"}}}}"#
    );
    let Incoming::Message {
        channel_id,
        seq,
        content: read,
    } = chat_client::frames::parse(&msg)
    else {
        panic!("not a message: {msg}");
    };
    assert_eq!(
        (channel_id, seq, frames::sent_micros(&read)),
        (5, 9, Some(123_456))
    );
}

#[test]
fn flags_parse_durations_ranges_and_scenario_defaults() {
    assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
    assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
    assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
    assert!(parse_duration("3 parsecs").is_err());
    let r = parse_ip_range("127.0.0.1-127.0.0.50").unwrap();
    assert_eq!(r.len(), 50);
    assert_eq!(r.nth(49), Ipv4Addr::new(127, 0, 0, 50));
    assert_eq!(r.nth(50), Ipv4Addr::new(127, 0, 0, 1));
    assert!(parse_ip_range("127.0.0.9-127.0.0.1").is_err());

    use clap::Parser;
    let a = Args::parse_from(["loadtest", "--scenario", "fanout"]);
    let s = a.shape();
    assert_eq!((s.users, s.channels, s.sockets_per_user), (100, 1, 10));
    assert_eq!(a.total_sockets(), 1000);
    assert_eq!(a.ws_urls(), vec!["ws://127.0.0.1:8080/ws".to_owned()]);
    let a = Args::parse_from([
        "loadtest",
        "--scenario",
        "connect",
        "--sockets",
        "5000",
        "--ws-targets",
        "ws://127.0.0.1:9001",
    ]);
    assert_eq!(a.total_sockets(), 5000);
    assert_eq!(a.ws_urls(), vec!["ws://127.0.0.1:9001/ws".to_owned()]);
}

#[test]
fn after_a_reconnect_the_resumed_gap_may_follow_live_messages_but_nothing_else_may() {
    let mut t = Track::new(0);
    t.on_message(1);
    // Disconnected while 2 and 3 were sent; the new socket's `ready` says last_seq 3.
    t.begin_reconnect_replay(t.contiguous(), 3);
    assert_eq!(t.on_message(4), Delivery::InOrder); // live, before the resume is served
    assert_eq!(t.on_message(2), Delivery::GapFilled);
    assert_eq!(t.on_message(3), Delivery::GapFilled);
    // The live message again: the edge must not send it twice.
    assert_eq!(t.on_message(4), Delivery::Duplicate);
    assert_eq!(t.on_message(6), Delivery::InOrder);
    assert_eq!(t.on_message(5), Delivery::OutOfOrder); // above the gap: a real reorder
    t.end_replay();
    assert_eq!(t.on_message(3), Delivery::Duplicate);
    let r = tally(t, &acked(7, 1..=6));
    assert_eq!((r.lost, r.duplicated, r.out_of_order), (0, 2, 1));
}

#[test]
fn a_replay_may_repeat_what_the_old_socket_saw_above_its_cursor_after_live_messages() {
    let mut t = Track::new(0);
    t.on_message(1);
    // 2 was this socket's own send, its ack lost with the connection; 3 had arrived.
    t.on_message(3);
    assert_eq!(t.contiguous(), 1);
    t.begin_reconnect_replay(t.contiguous(), 4);
    assert_eq!(t.on_message(5), Delivery::InOrder); // live, before the resume is served
    assert_eq!(t.on_message(2), Delivery::GapFilled);
    assert_eq!(t.on_message(3), Delivery::Replayed);
    assert_eq!(t.on_message(4), Delivery::GapFilled);
    assert_eq!(t.on_message(5), Delivery::Duplicate); // outside the gap: never twice
    t.end_replay();
    let r = tally(t, &acked(7, 1..=5));
    assert_eq!((r.lost, r.duplicated, r.out_of_order), (0, 1, 0));
}
