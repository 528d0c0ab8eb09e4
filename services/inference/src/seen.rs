//! The ids of the events a profile has merged, remembered compactly: each id as its 64-bit
//! XXH3 hash, the most recent [`REMEMBERED_EVENTS`] of them, stored as one base64 string of
//! little-endian hashes (about 5.5 KiB when full, against about 20 KiB for the ids as text).
//! A false "already merged" needs two of a lead's recent event ids to share a 64-bit hash:
//! about one chance in 3.6e16 per event with the window full.
//!
//! Profiles written before this form held the ids as a JSON array of strings; they are read
//! and hashed on load.

use std::collections::VecDeque;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Event ids remembered per lead for de-duplication. An event redelivered after this many
/// newer events of the same lead would count twice; the stream's duplicate window and the
/// consumer's ack discipline make that far outside normal operation.
pub const REMEMBERED_EVENTS: usize = 512;

/// Hashes of the most recent merged event ids, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeenEvents(VecDeque<u64>);

fn hash(event_id: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(event_id.as_bytes())
}

impl SeenEvents {
    /// True when `event_id` is among the remembered ones.
    pub fn contains(&self, event_id: &str) -> bool {
        let h = hash(event_id);
        self.0.contains(&h)
    }

    /// Remembers `event_id`, forgetting the oldest beyond [`REMEMBERED_EVENTS`].
    pub fn remember(&mut self, event_id: &str) {
        self.0.push_back(hash(event_id));
        while self.0.len() > REMEMBERED_EVENTS {
            self.0.pop_front();
        }
    }

    /// How many are remembered.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when none is remembered.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for SeenEvents {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut bytes = Vec::with_capacity(self.0.len() * 8);
        for h in &self.0 {
            bytes.extend_from_slice(&h.to_le_bytes());
        }
        serializer.serialize_str(&STANDARD.encode(bytes))
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Stored {
    Packed(String),
    Ids(Vec<String>),
}

impl<'de> Deserialize<'de> for SeenEvents {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut seen = SeenEvents::default();
        match Stored::deserialize(deserializer)? {
            Stored::Ids(ids) => ids.iter().for_each(|id| seen.remember(id)),
            Stored::Packed(text) => {
                let bytes = STANDARD.decode(text).map_err(D::Error::custom)?;
                if bytes.len() % 8 != 0 {
                    return Err(D::Error::custom(
                        "event hashes are not a whole number of u64",
                    ));
                }
                for chunk in bytes.chunks_exact(8) {
                    let mut word = [0u8; 8];
                    word.copy_from_slice(chunk);
                    seen.0.push_back(u64::from_le_bytes(word));
                }
                while seen.0.len() > REMEMBERED_EVENTS {
                    seen.0.pop_front();
                }
            }
        }
        Ok(seen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_reads_the_older_form() {
        let mut seen = SeenEvents::default();
        for i in 0..600 {
            seen.remember(&format!("event-{i}"));
        }
        assert_eq!(seen.len(), REMEMBERED_EVENTS);
        assert!(!seen.contains("event-0"), "the oldest are forgotten");
        assert!(seen.contains("event-599"));
        let json = serde_json::to_string(&seen).unwrap();
        assert!(json.len() < 6000, "{} bytes", json.len());
        let back: SeenEvents = serde_json::from_str(&json).unwrap();
        assert_eq!(back, seen);

        let older: SeenEvents = serde_json::from_str(r#"["a","b"]"#).unwrap();
        assert!(older.contains("a") && older.contains("b") && !older.contains("c"));
    }

    #[test]
    fn a_damaged_value_is_an_error_not_a_panic() {
        assert!(serde_json::from_str::<SeenEvents>(r#""AAAA""#).is_err());
        assert!(serde_json::from_str::<SeenEvents>(r#""not base64!""#).is_err());
        assert!(serde_json::from_str::<SeenEvents>("42").is_err());
    }
}
