//! The load test's message content: the send time in microseconds since the run's epoch, then
//! padding, so every socket reads a delivery's latency from the frame itself (the frame is read
//! by `chat_client::frames::parse`, which borrows the content).

/// Message content: the send time in microseconds since the run's epoch, then padding.
pub fn content(now_micros: u64, size: usize) -> String {
    let mut s = now_micros.to_string();
    if s.len() + 1 < size {
        s.push(' ');
        s.extend(std::iter::repeat_n('x', size - s.len()));
    }
    s
}

/// The send time a content carries, if it is one of ours.
pub fn sent_micros(content: &str) -> Option<u64> {
    content.split(' ').next()?.parse().ok()
}
