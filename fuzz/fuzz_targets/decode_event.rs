//! Fuzzes the event decoder and validation: any bytes on any subject must give an event or a
//! rejection with a reason, never a panic. An accepted event must also survive a round trip.
#![no_main]

use leadbus_shared::subjects::{dlq_subject, parse_event_subject};
use leadbus_shared::validate::{DEFAULT_MAX_PAYLOAD, check_values, decode_event};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The first line is the subject, the rest the payload.
    let split = data.iter().position(|b| *b == b'\n').unwrap_or(0);
    let (subject, payload) = data.split_at(split);
    let payload = payload.strip_prefix(b"\n").unwrap_or(payload);
    let subject = String::from_utf8_lossy(subject);
    let tokens = parse_event_subject(&subject);
    let _ = dlq_subject(tokens.map_or("", |t| t.tenant), tokens.map_or("", |t| t.event_type));

    match decode_event(tokens, payload, DEFAULT_MAX_PAYLOAD, || "fuzz-id".to_owned()) {
        Ok(event) => {
            // What was accepted re-encodes and decodes to the same event.
            let bytes = serde_json::to_vec(&event).expect("an accepted event serialises");
            let again = decode_event(tokens, &bytes, usize::MAX, || "other".to_owned())
                .expect("a re-encoded event decodes");
            assert_eq!(again.event_id, event.event_id);
            assert!(check_values(&again, chrono::Utc::now()).is_ok());
        }
        Err(rejection) => assert!(!rejection.reason.is_empty()),
    }
});
