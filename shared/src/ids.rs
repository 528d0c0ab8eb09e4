//! Tenant and lead identifiers: single NATS subject tokens, checked before anything is sent.
//!
//! An id is 1 to 64 characters of `A-Z a-z 0-9 _ -`. Dots, wildcards and spaces would let a
//! producer write into another tenant's subject space, so they are refused here, at the edge.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// Longest id accepted, in bytes.
pub const MAX_ID_LEN: usize = 64;

/// Why an id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The id is empty.
    #[error("{what} is empty")]
    Empty {
        /// `tenant_id` or `lead_id`.
        what: &'static str,
    },
    /// The id is longer than [`MAX_ID_LEN`].
    #[error("{what} is {len} bytes long; the limit is {MAX_ID_LEN}")]
    TooLong {
        /// `tenant_id` or `lead_id`.
        what: &'static str,
        /// Its length in bytes.
        len: usize,
    },
    /// The id holds a character outside `A-Z a-z 0-9 _ -`.
    #[error("{what} contains {found:?}; only A-Z a-z 0-9 _ - are allowed")]
    BadChar {
        /// `tenant_id` or `lead_id`.
        what: &'static str,
        /// The first offending character.
        found: char,
    },
}

/// Checks that `value` is a valid subject token id; `what` names it in the error.
pub fn check_token(what: &'static str, value: &str) -> Result<(), IdError> {
    if value.is_empty() {
        return Err(IdError::Empty { what });
    }
    if value.len() > MAX_ID_LEN {
        return Err(IdError::TooLong {
            what,
            len: value.len(),
        });
    }
    match value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        Some(found) => Err(IdError::BadChar { what, found }),
        None => Ok(()),
    }
}

macro_rules! token_id {
    ($name:ident, $what:literal, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps an id.
            pub fn new(value: impl Into<String>) -> Result<Self, IdError> {
                let value = value.into();
                check_token($what, &value)?;
                Ok(Self(value))
            }

            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                Self::new(raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

token_id!(
    TenantId,
    "tenant_id",
    "A tenant: one subject token, the unit of isolation."
);
token_id!(
    LeadId,
    "lead_id",
    "A lead within a tenant: one subject token."
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_tokens() {
        for ok in ["acme", "c_9f2k1", "A-Z_09", &"x".repeat(64)] {
            assert!(TenantId::new(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn refuses_subject_syntax_and_spaces() {
        for bad in ["", "a.b", "*", ">", "a b", "ten\tant", "é", &"x".repeat(65)] {
            assert!(LeadId::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn refuses_bad_ids_when_deserialising() {
        let err = serde_json::from_str::<TenantId>("\"acme.*\"").unwrap_err();
        assert!(err.to_string().contains("tenant_id contains '.'"), "{err}");
    }
}
