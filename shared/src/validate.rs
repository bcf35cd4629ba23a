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
}
