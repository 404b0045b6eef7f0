//! Dead letters that can always be sent.
//!
//! A dead letter carries the record that could not be published, so it is
//! at least as large as that record. When the record is near or over
//! `KAFKA_MAX_MESSAGE_BYTES`, the dead letter is too, the producer refuses
//! it, and the record is then neither published nor dead-lettered: it can
//! only be retried, forever. [`fit_dead_letter`] (and [`Sink::fit_dead_letter`]) turns such a
//! dead letter into a stub that fits: the parts that made it large are left
//! out, one at a time, and what remains names the record (its coordinates),
//! says why it failed, and gives its original size, so it can be found at
//! its source and replayed from there.
//!
//! The order of what is left out follows what a reader needs most: the
//! value goes first (it is what is large, and the source still has it), then
//! the key, then every header but the ones the caller marks essential.

use crate::kafka::OutgoingRecord;
#[cfg(doc)]
use crate::pipeline::Sink;

/// Header on a stub: the size in bytes ([`OutgoingRecord::size`]) the full
/// dead letter would have had. Its presence marks the record as a stub.
pub const ORIGINAL_BYTES_HEADER: &str = "dlq-original-bytes";
/// Header on a stub: what was left out, comma-separated, from `value`,
/// `key` and `headers`.
pub const LEFT_OUT_HEADER: &str = "dlq-left-out";

/// `letter` as it is when `fits` accepts it; otherwise a stub of it that
/// does (see the module doc). `essential` names the headers a stub keeps in
/// every case (the coordinates and the reason); they should be short, since
/// nothing else is cut to make room for them: with headers of a few hundred
/// bytes the stub fits any limit the configuration allows.
pub fn fit_dead_letter(
    mut letter: OutgoingRecord,
    essential: &[&str],
    fits: impl Fn(&OutgoingRecord) -> bool,
) -> OutgoingRecord {
    if fits(&letter) {
        return letter;
    }
    let original = letter.size();
    let mut left_out = Vec::new();
    let marks = |letter: &mut OutgoingRecord, left_out: &[&str]| {
        letter.headers.insert(
            ORIGINAL_BYTES_HEADER.to_owned(),
            original.to_string().into_bytes(),
        );
        letter
            .headers
            .insert(LEFT_OUT_HEADER.to_owned(), left_out.join(",").into_bytes());
    };

    letter.value = None;
    left_out.push("value");
    marks(&mut letter, &left_out);
    if fits(&letter) {
        return letter;
    }
    if letter.key.take().is_some() {
        left_out.push("key");
        marks(&mut letter, &left_out);
        if fits(&letter) {
            return letter;
        }
    }
    letter
        .headers
        .retain(|name, _| essential.contains(&name.as_str()));
    left_out.push("headers");
    marks(&mut letter, &left_out);
    letter
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::kafka::{KafkaConfig, KafkaProducer};
    use crate::pipeline::Sink;

    fn producer(max_message_bytes: usize) -> KafkaProducer {
        let mut config = KafkaConfig::plaintext(vec!["127.0.0.1:1".into()]);
        config.max_message_bytes = max_message_bytes;
        KafkaProducer::new(config)
    }

    fn letter(key: usize, value: usize, big_header: usize) -> OutgoingRecord {
        let mut headers = BTreeMap::new();
        headers.insert("source-offset".to_owned(), b"42".to_vec());
        headers.insert("reason".to_owned(), b"not-json".to_vec());
        headers.insert("trace".to_owned(), vec![b't'; big_header]);
        OutgoingRecord {
            key: Some(vec![b'k'; key]),
            value: Some(vec![b'v'; value]),
            headers,
            timestamp: None,
        }
    }

    const ESSENTIAL: &[&str] = &["source-offset", "reason"];

    #[test]
    fn a_dead_letter_that_fits_is_sent_as_it_is() {
        let full = letter(10, 500, 10);
        assert_eq!(
            producer(1024).fit_dead_letter(full.clone(), ESSENTIAL),
            full
        );
    }

    #[test]
    fn an_oversized_value_is_left_out_and_the_original_size_given() {
        let producer = producer(1024);
        let full = letter(10, 1_500_000, 10);
        let stub = producer.fit_dead_letter(full.clone(), ESSENTIAL);
        assert!(producer.fits(&stub));
        assert_eq!(stub.value, None);
        assert_eq!(stub.key, full.key);
        assert_eq!(stub.headers["trace"], full.headers["trace"]);
        assert_eq!(
            stub.headers[ORIGINAL_BYTES_HEADER],
            full.size().to_string().into_bytes()
        );
        assert_eq!(stub.headers[LEFT_OUT_HEADER], b"value");
    }

    #[test]
    fn a_large_key_goes_next_and_then_all_but_the_essential_headers() {
        let producer = producer(1024);
        let stub = producer.fit_dead_letter(letter(2000, 10, 10), ESSENTIAL);
        assert!(producer.fits(&stub));
        assert_eq!((stub.key.as_ref(), stub.value.as_ref()), (None, None));
        assert!(stub.headers.contains_key("trace"));
        assert_eq!(stub.headers[LEFT_OUT_HEADER], b"value,key");

        let stub = producer.fit_dead_letter(letter(10, 10, 5000), ESSENTIAL);
        assert!(producer.fits(&stub));
        let names: Vec<&str> = stub.headers.keys().map(String::as_str).collect();
        assert_eq!(
            names,
            [
                LEFT_OUT_HEADER,
                ORIGINAL_BYTES_HEADER,
                "reason",
                "source-offset"
            ]
        );
        assert_eq!(stub.headers[LEFT_OUT_HEADER], b"value,key,headers");
    }
}
