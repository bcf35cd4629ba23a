//! Server frames as they go on the wire: a text frame's header and payload are encoded once
//! into one buffer that every socket writes as it is (a server frame is not masked), and the
//! writes of one wake-up are gathered into one vectored write, optionally as one batch frame.

use bytes::{Bytes, BytesMut};

/// The WebSocket subprotocol of clients that take several server frames in one text frame.
pub const BATCH_PROTOCOL: &str = "chat.v1.batch";

/// Payload bytes one batch frame gathers at most; more queued frames go in the next one.
const BATCH_BYTES: usize = 64 * 1024;

/// One text frame, encoded: `wire` is the whole frame (header and payload).
#[derive(Debug, Clone)]
pub struct Frame {
    wire: Bytes,
    head: u8,
}

/// Writes the header of an unmasked, final text frame of `len` payload bytes into `out`;
/// returns its length (2, 4 or 10 bytes, RFC 6455 section 5.2).
fn header(len: usize, out: &mut [u8; 10]) -> usize {
    out[0] = 0x81; // FIN + text
    if len < 126 {
        out[1] = len as u8;
        2
    } else if let Ok(l) = u16::try_from(len) {
        out[1] = 126;
        out[2..4].copy_from_slice(&l.to_be_bytes());
        4
    } else {
        out[1] = 127;
        out[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        10
    }
}

impl Frame {
    /// Frames `payload` (UTF-8 JSON) as one text frame: one copy, shared by every socket.
    pub fn text(payload: &[u8]) -> Frame {
        let mut h = [0u8; 10];
        let n = header(payload.len(), &mut h);
        let mut wire = BytesMut::with_capacity(n + payload.len());
        wire.extend_from_slice(&h[..n]);
        wire.extend_from_slice(payload);
        Frame {
            wire: wire.freeze(),
            head: n as u8,
        }
    }

    /// The payload's length (what the queue's byte bound counts).
    pub fn len(&self) -> usize {
        self.wire.len() - self.head as usize
    }

    /// The JSON text the frame carries.
    pub fn payload(&self) -> Bytes {
        self.wire.slice(self.head as usize..)
    }
}

impl From<String> for Frame {
    fn from(json: String) -> Frame {
        Frame::text(json.as_bytes())
    }
}

/// The byte runs of one vectored write, built from queued frames without copying them.
#[derive(Debug, Default)]
pub struct Gather {
    chunks: Vec<Bytes>,
}

const OPEN: Bytes = Bytes::from_static(b"[");
const COMMA: Bytes = Bytes::from_static(b",");
const CLOSE: Bytes = Bytes::from_static(b"]");

impl Gather {
    /// Adds `frames` in order: each as its own frame, or, when `batch`, as few text frames as
    /// the batch bound allows, each a JSON array of the frames' objects (a single frame is sent
    /// as it is).
    pub fn add(&mut self, frames: &[Frame], batch: bool) {
        if !batch {
            self.chunks.extend(frames.iter().map(|f| f.wire.clone()));
            return;
        }
        let mut rest = frames;
        while !rest.is_empty() {
            // As many frames as fit in one batch (at least one).
            let mut bytes = 0;
            let mut n = 0;
            for f in rest {
                if n > 0 && bytes + f.len() + 1 > BATCH_BYTES {
                    break;
                }
                bytes += f.len() + 1;
                n += 1;
            }
            let (group, tail) = rest.split_at(n);
            rest = tail;
            if let [one] = group {
                self.chunks.push(one.wire.clone());
                continue;
            }
            // `[` + payloads joined by `,` + `]`: payload bytes + n - 1 commas + 2.
            let len = bytes + 1;
            let mut h = [0u8; 10];
            let hn = header(len, &mut h);
            self.chunks.push(Bytes::copy_from_slice(&h[..hn]));
            self.chunks.push(OPEN);
            for (i, f) in group.iter().enumerate() {
                if i > 0 {
                    self.chunks.push(COMMA);
                }
                self.chunks.push(f.payload());
            }
            self.chunks.push(CLOSE);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    /// The runs not yet written, for `write_vectored`.
    pub fn slices(&self) -> Vec<std::io::IoSlice<'_>> {
        self.chunks
            .iter()
            .map(|c| std::io::IoSlice::new(c))
            .collect()
    }

    /// Drops the first `n` bytes (they were written).
    pub fn advance(&mut self, mut n: usize) {
        let mut done = 0;
        for c in &mut self.chunks {
            if n == 0 {
                break;
            }
            if n >= c.len() {
                n -= c.len();
                done += 1;
            } else {
                bytes::Buf::advance(c, n);
                n = 0;
            }
        }
        self.chunks.drain(..done);
    }

    /// Every byte in order (tests).
    #[cfg(test)]
    fn concat(&self) -> Vec<u8> {
        self.chunks.iter().flat_map(|c| c.iter().copied()).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    use tokio_tungstenite::tungstenite::protocol::frame::FrameHeader;

    use super::*;

    /// Parses `wire` with tungstenite's own frame decoder into (opcode, payload) pairs.
    fn decode(wire: &[u8]) -> Vec<(OpCode, Vec<u8>)> {
        let mut cur = Cursor::new(wire);
        let mut out = Vec::new();
        while (cur.position() as usize) < wire.len() {
            let (h, len) = FrameHeader::parse(&mut cur)
                .expect("valid header")
                .expect("complete header");
            assert!(h.is_final);
            assert!(h.mask.is_none(), "server frames are not masked");
            let start = cur.position() as usize;
            let end = start + len as usize;
            out.push((h.opcode, wire[start..end].to_vec()));
            cur.set_position(end as u64);
        }
        out
    }

    #[test]
    fn headers_of_every_length_class_decode_to_the_payload() {
        for len in [0, 1, 125, 126, 127, 65_535, 65_536, 70_000] {
            let payload = vec![b'x'; len];
            let f = Frame::text(&payload);
            assert_eq!(f.len(), len);
            assert_eq!(
                decode(&f.wire),
                vec![(OpCode::Data(Data::Text), payload.clone())]
            );
            assert_eq!(&f.payload()[..], &payload[..]);
        }
    }

    #[test]
    fn plain_sockets_get_one_frame_each_and_batch_sockets_one_array() {
        let frames: Vec<Frame> = (1..=3)
            .map(|i| Frame::from(format!(r#"{{"type":"message","seq":{i}}}"#)))
            .collect();
        let mut plain = Gather::default();
        plain.add(&frames, false);
        let got: Vec<Vec<u8>> = decode(&plain.concat()).into_iter().map(|f| f.1).collect();
        assert_eq!(got.len(), 3);
        assert_eq!(got[2], br#"{"type":"message","seq":3}"#.to_vec());

        let mut batch = Gather::default();
        batch.add(&frames, true);
        let got = decode(&batch.concat());
        assert_eq!(got.len(), 1);
        let v: serde_json::Value = serde_json::from_slice(&got[0].1).expect("a JSON array");
        let seqs: Vec<i64> = v
            .as_array()
            .expect("array")
            .iter()
            .filter_map(|e| e["seq"].as_i64())
            .collect();
        assert_eq!(seqs, vec![1, 2, 3]);

        let mut single = Gather::default();
        single.add(&frames[..1], true);
        assert_eq!(single.concat(), frames[0].wire.to_vec());
    }

    #[test]
    fn a_batch_past_its_byte_bound_is_split_in_order() {
        let big = "y".repeat(BATCH_BYTES / 3);
        let frames: Vec<Frame> = (1..=7)
            .map(|i| Frame::from(format!(r#"{{"seq":{i},"pad":"{big}"}}"#)))
            .collect();
        let mut g = Gather::default();
        g.add(&frames, true);
        let mut seqs = Vec::new();
        let decoded = decode(&g.concat());
        assert!(decoded.len() > 1, "split into several frames");
        for (_, p) in decoded {
            assert!(p.len() <= BATCH_BYTES + 2);
            match serde_json::from_slice::<serde_json::Value>(&p).expect("JSON") {
                serde_json::Value::Array(a) => {
                    seqs.extend(a.iter().filter_map(|e| e["seq"].as_i64()))
                }
                o => seqs.extend(o["seq"].as_i64()),
            }
        }
        assert_eq!(seqs, (1..=7).collect::<Vec<i64>>());
    }

    #[test]
    fn advance_drops_written_bytes_across_chunks() {
        let frames: Vec<Frame> = ["a", "bb", "ccc"]
            .iter()
            .map(|s| Frame::from(format!("\"{s}\"")))
            .collect();
        let mut g = Gather::default();
        g.add(&frames, false);
        let all = g.concat();
        for cut in 0..=all.len() {
            let mut h = Gather::default();
            h.add(&frames, false);
            h.advance(cut);
            assert_eq!(h.concat(), all[cut..].to_vec(), "cut at {cut}");
            assert_eq!(h.is_empty(), cut == all.len());
        }
    }
}
