//! Validated value types: every piece of user input is parsed into one of these before any
//! rule or storage sees it, so an invalid value cannot exist past the edge.

use std::fmt;

use crate::ValidationError;

/// A unique handle: 3 to 32 characters of `a-z`, `0-9` and `_`.
///
/// Input is lowercased first, so `Alice` and `alice` are the same user: uniqueness is
/// case-insensitive by construction.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(transparent))]
pub struct Username(String);

impl Username {
    /// Shortest allowed username, in characters.
    pub const MIN_LEN: usize = 3;
    /// Longest allowed username, in characters.
    pub const MAX_LEN: usize = 32;

    /// Validates and normalises a username.
    ///
    /// ```
    /// use confab_domain::Username;
    /// assert_eq!(Username::parse("Bob_7").unwrap().as_str(), "bob_7");
    /// assert!(Username::parse("no spaces").is_err());
    /// assert!(Username::parse("ab").is_err());
    /// ```
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        // ASCII lowercasing only: Unicode's would turn the Kelvin sign (U+212A) into `k` and
        // let a look-alike of another user's name through.
        let name = input.trim().to_ascii_lowercase();
        let len = name.chars().count();
        if !(Self::MIN_LEN..=Self::MAX_LEN).contains(&len) {
            return Err(ValidationError::new(
                "username",
                format!(
                    "must be {} to {} characters long",
                    Self::MIN_LEN,
                    Self::MAX_LEN
                ),
            ));
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(ValidationError::new(
                "username",
                "may contain only letters a-z, digits and underscores",
            ));
        }
        Ok(Self(name))
    }

    /// The normalised username.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An email address, lowercased. Checked for shape only (one `@`, a dotted domain, no spaces):
/// whether it receives mail is for a confirmation flow to find out.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(transparent))]
pub struct Email(String);

impl Email {
    /// Longest address allowed by RFC 5321.
    pub const MAX_LEN: usize = 254;

    /// Validates and normalises an email address.
    ///
    /// ```
    /// use confab_domain::Email;
    /// assert_eq!(Email::parse("Ann@Example.org").unwrap().as_str(), "ann@example.org");
    /// assert!(Email::parse("ann@localhost").is_err());
    /// assert!(Email::parse("not an email").is_err());
    /// ```
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let email = input.trim().to_lowercase();
        let invalid =
            || ValidationError::new("email", "must be an email address like name@example.com");
        if email.is_empty() || email.len() > Self::MAX_LEN {
            return Err(invalid());
        }
        if email.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid());
        }
        let (local, domain) = email.split_once('@').ok_or_else(invalid)?;
        let domain_ok = !domain.contains('@')
            && domain.contains('.')
            && domain.split('.').all(|label| !label.is_empty());
        if local.is_empty() || !domain_ok {
            return Err(invalid());
        }
        Ok(Self(email))
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password as typed: 8 to 256 characters. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Shortest allowed password, in characters.
    pub const MIN_LEN: usize = 8;
    /// Longest allowed password, in characters (argon2 hashes any length; this bounds the work).
    pub const MAX_LEN: usize = 256;

    /// Validates a new password. Whitespace is kept: it is part of what the user typed.
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let len = input.chars().count();
        if !(Self::MIN_LEN..=Self::MAX_LEN).contains(&len) {
            return Err(ValidationError::new(
                "password",
                format!(
                    "must be {} to {} characters long",
                    Self::MIN_LEN,
                    Self::MAX_LEN
                ),
            ));
        }
        Ok(Self(input.to_owned()))
    }

    /// The password, for the hasher only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

/// Trims `input` and checks that it has `min..=max` characters and no control characters.
fn bounded_text(
    field: &'static str,
    input: &str,
    min: usize,
    max: usize,
    allow_newlines: bool,
) -> Result<String, ValidationError> {
    let text = input.trim();
    let len = text.chars().count();
    if len < min {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if len > max {
        return Err(ValidationError::new(
            field,
            format!("must be at most {max} characters long"),
        ));
    }
    let bad_char =
        |c: char| c.is_control() && !(allow_newlines && (c == '\n' || c == '\t' || c == '\r'));
    if text.chars().any(bad_char) {
        return Err(ValidationError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(text.to_owned())
}

/// The name a user shows: 1 to 64 characters after trimming.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(transparent))]
pub struct DisplayName(String);

impl DisplayName {
    /// Longest display name, in characters.
    pub const MAX_LEN: usize = 64;

    /// Validates a display name.
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        bounded_text("display_name", input, 1, Self::MAX_LEN, false).map(Self)
    }

    /// A user who gives no display name is shown by their username.
    pub fn from_username(username: &Username) -> Self {
        Self(username.as_str().to_owned())
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The name of a group or room: 1 to 100 characters after trimming.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(transparent))]
pub struct GroupName(String);

impl GroupName {
    /// Longest group name, in characters.
    pub const MAX_LEN: usize = 100;

    /// Validates a group name.
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        bounded_text("name", input, 1, Self::MAX_LEN, false).map(Self)
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The text of a message: 1 to 4000 characters after trimming; line breaks and tabs allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(transparent))]
pub struct MessageBody(String);

impl MessageBody {
    /// Longest body, in characters (Unicode scalar values).
    pub const MAX_LEN: usize = 4000;

    /// Validates a message body and trims it.
    ///
    /// ```
    /// use confab_domain::MessageBody;
    /// assert_eq!(MessageBody::parse("  hi \n").unwrap().as_str(), "hi");
    /// assert!(MessageBody::parse(&"x".repeat(4001)).is_err());
    /// ```
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        bounded_text("body", input, 1, Self::MAX_LEN, true).map(Self)
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The client's own id for a message it sends, which makes a resend idempotent: 1 to 64
/// printable characters, unique per sender.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(into = "String", try_from = "String"))]
pub struct ClientMsgId(String);

impl From<ClientMsgId> for String {
    fn from(id: ClientMsgId) -> Self {
        id.0
    }
}

impl TryFrom<String> for ClientMsgId {
    type Error = ValidationError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl ClientMsgId {
    /// Longest client message id, in characters.
    pub const MAX_LEN: usize = 64;

    /// Validates a client message id. It is compared exactly, so it is not trimmed.
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        let len = input.chars().count();
        if len == 0 || len > Self::MAX_LEN {
            return Err(ValidationError::new(
                "client_msg_id",
                format!("must be 1 to {} characters long", Self::MAX_LEN),
            ));
        }
        if input.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(ValidationError::new(
                "client_msg_id",
                "must not contain whitespace or control characters",
            ));
        }
        Ok(Self(input.to_owned()))
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn username_is_lowercased_so_uniqueness_ignores_case() {
        assert_eq!(
            Username::parse("ALICE").unwrap(),
            Username::parse("alice").unwrap()
        );
    }

    #[test]
    fn username_rejects_bad_lengths_and_characters() {
        for bad in [
            "",
            "ab",
            &"a".repeat(33),
            "al ice",
            "al-ice",
            "élise",
            "bob!",
            // The Kelvin sign, which Unicode lowercases to an ASCII `k`.
            "\u{212A}ate",
        ] {
            let error = Username::parse(bad).unwrap_err();
            assert_eq!(error.field, "username", "{bad:?}");
        }
    }

    #[test]
    fn email_requires_local_part_and_dotted_domain() {
        for bad in [
            "",
            "a",
            "@x.org",
            "a@",
            "a@b",
            "a@@b.org",
            "a b@c.org",
            "a@b..org",
            "a@.org",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Email::parse("first.last+tag@mail.example.co.uk").is_ok());
    }

    #[test]
    fn password_bounds_are_in_characters_and_debug_hides_it() {
        assert!(Password::parse("1234567").is_err());
        assert!(Password::parse("12345678").is_ok());
        assert!(Password::parse(&"é".repeat(256)).is_ok());
        assert!(Password::parse(&"é".repeat(257)).is_err());
        let password = Password::parse("hunter2hunter2").unwrap();
        assert!(!format!("{password:?}").contains("hunter2"));
    }

    #[test]
    fn message_body_counts_characters_not_bytes() {
        assert!(MessageBody::parse(&"😀".repeat(4000)).is_ok());
        assert!(MessageBody::parse(&"😀".repeat(4001)).is_err());
    }

    #[test]
    fn message_body_keeps_line_breaks_but_rejects_other_control_characters() {
        assert_eq!(MessageBody::parse("a\nb").unwrap().as_str(), "a\nb");
        assert!(MessageBody::parse("a\u{0}b").is_err());
        assert!(MessageBody::parse(" \n\t ").is_err());
    }

    #[test]
    fn client_msg_id_is_exact_and_bounded() {
        assert!(ClientMsgId::parse("").is_err());
        assert!(ClientMsgId::parse(" x").is_err());
        assert!(ClientMsgId::parse(&"x".repeat(65)).is_err());
        assert_eq!(ClientMsgId::parse("abc-123").unwrap().as_str(), "abc-123");
    }

    proptest! {
        #[test]
        fn any_valid_username_roundtrips(name in "[a-zA-Z0-9_]{3,32}") {
            let parsed = Username::parse(&name).unwrap();
            prop_assert_eq!(parsed.as_str(), name.to_lowercase());
            prop_assert_eq!(Username::parse(parsed.as_str()).unwrap(), parsed);
        }

        #[test]
        fn username_never_accepts_characters_outside_the_alphabet(
            prefix in "[a-z]{3}", bad in "[^a-zA-Z0-9_\\s]"
        ) {
            let input = format!("{prefix}{bad}");
            prop_assert!(Username::parse(&input).is_err());
        }

        #[test]
        fn message_body_is_accepted_exactly_when_trimmed_length_is_in_bounds(body in "\\PC{0,4100}") {
            let trimmed_len = body.trim().chars().count();
            let parsed = MessageBody::parse(&body);
            prop_assert_eq!(parsed.is_ok(), (1..=MessageBody::MAX_LEN).contains(&trimmed_len));
            if let Ok(parsed) = parsed {
                prop_assert_eq!(parsed.as_str(), body.trim());
            }
        }
    }
}
