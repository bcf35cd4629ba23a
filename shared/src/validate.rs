//! Validated newtypes: input is parsed at the boundary and carried as these afterwards.

use crate::limits::Limits;

/// A validation failure, with a message fit to show the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

fn invalid(msg: impl Into<String>) -> Invalid {
    Invalid(msg.into())
}

/// A username: 3..32 of `[A-Za-z0-9_.-]` by default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(s: &str, l: &Limits) -> Result<Self, Invalid> {
        let n = s.chars().count();
        if n < l.username_min || n > l.username_max {
            return Err(invalid(format!(
                "username must be {}..{} characters",
                l.username_min, l.username_max
            )));
        }
        if !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        {
            return Err(invalid(
                "username may contain only A-Z, a-z, 0-9, '_', '.' and '-'",
            ));
        }
        Ok(Username(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password: 8..256 characters by default.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(..)")
    }
}

impl Password {
    pub fn parse(s: &str, l: &Limits) -> Result<Self, Invalid> {
        let n = s.chars().count();
        if n < l.password_min || n > l.password_max {
            return Err(invalid(format!(
                "password must be {}..{} characters",
                l.password_min, l.password_max
            )));
        }
        Ok(Password(s.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A channel name: 1..80 characters, not blank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelName(String);

impl ChannelName {
    pub fn parse(s: &str, l: &Limits) -> Result<Self, Invalid> {
        let t = s.trim();
        let n = t.chars().count();
        if n == 0 || n > l.max_channel_name_chars {
            return Err(invalid(format!(
                "channel name must be 1..{} characters and not blank",
                l.max_channel_name_chars
            )));
        }
        if t.contains('\0') {
            return Err(invalid("channel name must not contain NUL characters"));
        }
        Ok(ChannelName(t.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// Message content: 1..4000 characters and not blank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content(String);

impl Content {
    pub fn parse(s: String, l: &Limits) -> Result<Self, Invalid> {
        if s.trim().is_empty() {
            return Err(invalid("content must not be blank"));
        }
        // PostgreSQL text cannot hold U+0000: refused here rather than failing the commit.
        if s.contains('\0') {
            return Err(invalid("content must not contain NUL characters"));
        }
        // Count lazily: stop as soon as the limit is passed.
        if s.chars().nth(l.max_content_chars).is_some() {
            return Err(invalid(format!(
                "content must be at most {} characters",
                l.max_content_chars
            )));
        }
        Ok(Content(s))
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A client message id: 1..128 bytes of printable ASCII, or absent.
pub fn client_msg_id(s: Option<String>, l: &Limits) -> Result<Option<String>, Invalid> {
    match s {
        None => Ok(None),
        Some(s) if s.is_empty() || s.len() > l.max_client_msg_id => Err(invalid(format!(
            "client_msg_id must be 1..{} bytes",
            l.max_client_msg_id
        ))),
        Some(s) if !s.chars().all(|c| c.is_ascii_graphic()) => Err(invalid(
            "client_msg_id must be printable ASCII without spaces",
        )),
        Some(s) => Ok(Some(s)),
    }
}

/// Longest reaction, in bytes.
pub const EMOJI_MAX_BYTES: usize = 32;

/// A reaction: one emoji, at most [`EMOJI_MAX_BYTES`] bytes, either
/// - a shortcode `:name:` with a name of 1..30 of `[a-z0-9_+-]` (custom emoji), or
/// - one emoji as a user perceives it: a base character from the emoji blocks (or a keycap base
///   `0-9 # *` followed by U+20E3), then only what extends it: variation selectors, skin-tone
///   modifiers, the keycap mark, tag characters (subdivision flags), a zero-width joiner
///   followed by another base (family and profession sequences), or a second regional
///   indicator (a flag). No whitespace, no control characters, no text around it.
pub fn emoji(s: &str) -> Result<&str, Invalid> {
    let bad = || {
        invalid(format!(
            "emoji must be one emoji (at most {EMOJI_MAX_BYTES} bytes) or a :shortcode:"
        ))
    };
    if s.is_empty() || s.len() > EMOJI_MAX_BYTES {
        return Err(bad());
    }
    if let Some(name) = s.strip_prefix(':').and_then(|r| r.strip_suffix(':')) {
        let ok = (1..=30).contains(&name.len())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_+-".contains(&b));
        return if ok { Ok(s) } else { Err(bad()) };
    }
    let mut chars = s.chars();
    let first = chars.next().ok_or_else(bad)?;
    let keycap = matches!(first, '0'..='9' | '#' | '*');
    if !(keycap || is_base(first)) {
        return Err(bad());
    }
    let (mut regional, mut joined, mut capped) = (is_regional(first), false, false);
    for c in chars {
        match c {
            _ if joined => {
                if !is_base(c) {
                    return Err(bad());
                }
                (joined, regional) = (false, false);
            }
            '\u{200D}' => joined = true,
            '\u{20E3}' => capped = true,
            _ if is_modifier(c) => {}
            _ if regional && is_regional(c) => regional = false,
            _ => return Err(bad()),
        }
    }
    if joined || (keycap && !capped) {
        return Err(bad());
    }
    Ok(s)
}

/// A character that can start an emoji: in the blocks emoji come from (©, ®, U+203C..U+3299:
/// punctuation, symbols, arrows, dingbats, enclosed characters; U+1F000..U+1FAFF: the emoji
/// planes), not one that only extends another.
fn is_base(c: char) -> bool {
    matches!(c, '\u{A9}' | '\u{AE}' | '\u{203C}'..='\u{3299}' | '\u{1F000}'..='\u{1FAFF}')
        && !is_modifier(c)
        && !matches!(c, '\u{2060}'..='\u{206F}' | '\u{20E3}' | '\u{3000}')
}

/// Variation selectors, skin tones, tag characters.
fn is_modifier(c: char) -> bool {
    matches!(c, '\u{FE0E}' | '\u{FE0F}' | '\u{1F3FB}'..='\u{1F3FF}' | '\u{E0020}'..='\u{E007F}')
}

fn is_regional(c: char) -> bool {
    matches!(c, '\u{1F1E6}'..='\u{1F1FF}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_of_section_6() {
        let l = Limits::default();
        assert!(Username::parse("ab", &l).is_err());
        assert!(Username::parse("abc", &l).is_ok());
        assert!(Username::parse(&"a".repeat(32), &l).is_ok());
        assert!(Username::parse(&"a".repeat(33), &l).is_err());
        assert!(Username::parse("al ice", &l).is_err());
        assert!(Username::parse("al.i-c_e9", &l).is_ok());
        assert!(Password::parse("1234567", &l).is_err());
        assert!(Password::parse("12345678", &l).is_ok());
        assert!(Password::parse(&"p".repeat(257), &l).is_err());
        assert!(ChannelName::parse("   ", &l).is_err());
        assert!(ChannelName::parse(&"c".repeat(81), &l).is_err());
        assert_eq!(
            ChannelName::parse(" general ", &l).unwrap().as_str(),
            "general"
        );
        assert!(Content::parse(" \n\t".into(), &l).is_err());
        assert!(Content::parse("".into(), &l).is_err());
        assert!(Content::parse("é".repeat(4000), &l).is_ok());
        assert!(Content::parse("é".repeat(4001), &l).is_err());
        assert!(client_msg_id(Some("".into()), &l).is_err());
        assert!(client_msg_id(Some("c 1".into()), &l).is_err());
        assert_eq!(client_msg_id(None, &l), Ok(None));
    }

    #[test]
    fn one_emoji_or_a_shortcode() {
        for ok in [
            "👍",
            "❤️",
            "👍🏽",
            "🇫🇷",
            "1️⃣",
            "#⃣",
            "👨‍👩‍👧",
            "🏴‍☠️",
            ":party_parrot:",
            ":+1:",
            "©️",
            "🏴\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F}",
        ] {
            assert_eq!(emoji(ok), Ok(ok), "{ok:?}");
        }
        for bad in [
            "",
            "a",
            "ab",
            "1",
            "é",
            "中",
            "👍 ",
            " 👍",
            "👍a",
            "👍👍",
            "🇫🇷🇫",
            "\u{200D}👍",
            "👍\u{200D}",
            "\u{FE0F}",
            ":Bad:",
            "::",
            ":a b:",
            "\n",
            "\u{200B}",
            &"👨‍👩‍👧".repeat(3),
        ] {
            assert!(emoji(bad).is_err(), "{bad:?}");
        }
    }
}
