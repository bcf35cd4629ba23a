//! Fuzz target: decoding a client's WebSocket text frame (`ClientFrame::decode`, what the edge
//! runs on every text frame). Any text is either a frame, which serializes and decodes back to
//! itself, or refused with what becomes a `bad_request` error frame; it never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::protocol::{ClientFrame, ErrorCode, ServerFrame};

fuzz_target!(|data: &[u8]| {
    // The edge only decodes text frames, which are UTF-8 (binary frames are refused whole).
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match ClientFrame::decode(text) {
        Ok(frame) => {
            let again = serde_json::to_string(&frame).expect("a decoded frame serializes");
            let back = ClientFrame::decode(&again).expect("a serialized frame decodes");
            assert_eq!(back, frame, "round trip of {text:?}");
        }
        Err(bad) => {
            if let Some(id) = &bad.client_msg_id {
                // The id echoed is one the text carries.
                let v: serde_json::Value =
                    serde_json::from_str(text).expect("the id came from JSON");
                assert_eq!(
                    v.get("client_msg_id").and_then(|x| x.as_str()),
                    Some(id.as_str())
                );
            }
            match ServerFrame::from(bad) {
                ServerFrame::Error { code, .. } => assert_eq!(code, ErrorCode::BadRequest),
                other => panic!("a refusal that is not an error frame: {other:?}"),
            }
        }
    }
});
