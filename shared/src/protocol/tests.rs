//! Frames parse and render as SPEC section 4 writes them.

use super::*;

#[test]
fn client_frames_parse_as_in_the_spec() {
    let f: ClientFrame = serde_json::from_str(
        r#"{"type":"send","channel_id":5,"content":"hi","client_msg_id":"c-1","reply_to":null}"#,
    )
    .unwrap();
    assert_eq!(
        f,
        ClientFrame::Send {
            channel_id: 5,
            content: "hi".into(),
            client_msg_id: Some("c-1".into()),
            reply_to: None,
            attachments: Vec::new(),
        }
    );
    let f: ClientFrame =
        serde_json::from_str(r#"{"type":"resume","channels":{"5":41,"7":0}}"#).unwrap();
    assert_eq!(
        f,
        ClientFrame::Resume {
            channels: BTreeMap::from([(5, 41), (7, 0)])
        }
    );
    assert!(serde_json::from_str::<ClientFrame>(r#"{"type":"nope"}"#).is_err());
    assert!(
        serde_json::from_str::<ClientFrame>(r#"{"type":"read","channel_id":"x","seq":1}"#).is_err()
    );
}

#[test]
fn message_id_is_a_string_on_the_wire() {
    let m = Message {
        id: 9_007_199_254_740_993,
        channel_id: 5,
        seq: 42,
        sender_id: 1,
        sender: "alice".into(),
        content: "hi".into(),
        reply_to: None,
        client_msg_id: Some("c-1".into()),
        created_at: DateTime::from_timestamp(0, 0).unwrap(),
        edited_at: None,
        deleted: false,
        reactions: Vec::new(),
        thread_root: None,
        reply_count: 0,
        last_reply_at: None,
        mentions: Vec::new(),
        attachments: Vec::new(),
    };
    let v = serde_json::to_value(ServerFrame::Message { message: m.clone() }).unwrap();
    assert_eq!(v["type"], "message");
    assert_eq!(v["message"]["id"], "9007199254740993");
    let back: ServerFrame = serde_json::from_value(v).unwrap();
    assert_eq!(back, ServerFrame::Message { message: m.clone() });
    // A message never changed renders as before events existed.
    let text = ServerFrame::Message { message: m }.to_json();
    assert!(
        !text.contains("edited_at") && !text.contains("deleted") && !text.contains("reactions")
    );
    assert!(!text.contains("thread_root") && !text.contains("reply_count"));
}

#[test]
fn change_frames_name_the_message_by_its_string_id() {
    let f: ClientFrame = serde_json::from_str(
        r#"{"type":"react","channel_id":5,"message_id":"9007199254740993","emoji":"👍","client_msg_id":"r-1"}"#,
    )
    .unwrap();
    assert_eq!(
        f,
        ClientFrame::React {
            channel_id: 5,
            message_id: 9_007_199_254_740_993,
            emoji: "👍".into(),
            client_msg_id: Some("r-1".into()),
        }
    );
    let f: ClientFrame =
        serde_json::from_str(r#"{"type":"delete","channel_id":5,"message_id":"7"}"#).unwrap();
    assert_eq!(
        f,
        ClientFrame::Delete {
            channel_id: 5,
            message_id: 7,
            client_msg_id: None,
        }
    );
    assert!(serde_json::from_str::<ClientFrame>(
        r#"{"type":"edit","channel_id":5,"message_id":"x","content":"a"}"#
    )
    .is_err());
}
