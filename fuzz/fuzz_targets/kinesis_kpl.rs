//! The KPL de-aggregator, `kinesis_event_logger::kpl::decode`.
//!
//! The input is a record's data. It is decoded as sent, and again with its
//! MD5 trailer recomputed, so that the protobuf reader is reached by almost
//! every input instead of stopping at the digest. Invariants:
//! * `decode` never panics, and fails with `DigestMismatch` only when the
//!   trailer is in fact wrong;
//! * a decoded aggregate has at least one user record, and every key and
//!   payload is borrowed from inside the input;
//! * re-encoding the user records the way the KPL does and decoding that
//!   gives the same user records back.

#![no_main]

use kinesis_event_logger::kpl::{decode, is_aggregated, KplError, UserRecord, MAGIC};
use libfuzzer_sys::fuzz_target;
use md5::{Digest, Md5};

fuzz_target!(|data: &[u8]| {
    assert_eq!(is_aggregated(data), data.starts_with(&MAGIC));
    let as_sent = decode(data);

    let Some(fixed) = with_correct_digest(data) else {
        assert!(
            as_sent.is_err(),
            "{} bytes cannot be an aggregate",
            data.len()
        );
        return;
    };
    let fixed_result = decode(&fixed);
    match &as_sent {
        Ok(records) => {
            assert_eq!(fixed, data, "a wrong digest was accepted");
            assert_eq!(Ok(records), fixed_result.as_ref());
        }
        Err(KplError::DigestMismatch) => assert_ne!(fixed, data, "a correct digest was refused"),
        Err(_) => {}
    }

    let Ok(records) = fixed_result else {
        return;
    };
    assert!(
        !records.is_empty(),
        "an aggregate without user records was accepted"
    );
    for record in &records {
        assert_within(&fixed, record.partition_key.as_bytes(), "partition key");
        if let Some(key) = record.explicit_hash_key {
            assert_within(&fixed, key.as_bytes(), "explicit hash key");
        }
        assert_within(&fixed, record.data, "data");
    }

    let again = aggregate(&records);
    let decoded = decode(&again).expect("a re-encoded aggregate must decode");
    assert_eq!(decoded, records, "re-encoding changed the user records");
});

/// `data` with its last 16 bytes replaced by the MD5 of the body, when it
/// has the magic prefix and room for a trailer.
fn with_correct_digest(data: &[u8]) -> Option<Vec<u8>> {
    let rest = data.strip_prefix(&MAGIC)?;
    let body = rest.get(..rest.len().checked_sub(16)?)?;
    let mut fixed = MAGIC.to_vec();
    fixed.extend_from_slice(body);
    fixed.extend_from_slice(&Md5::digest(body));
    Some(fixed)
}

fn assert_within(outer: &[u8], inner: &[u8], what: &str) {
    let outer = outer.as_ptr_range();
    let inner_range = inner.as_ptr_range();
    assert!(
        inner.is_empty() || (outer.start <= inner_range.start && inner_range.end <= outer.end),
        "{what} is not borrowed from the aggregate"
    );
}

/// Encodes user records as the KPL does: key tables in order of first use,
/// then one `Record` message per user record, then the MD5 trailer.
fn aggregate(records: &[UserRecord<'_>]) -> Vec<u8> {
    let mut partition_keys: Vec<&str> = Vec::new();
    let mut hash_keys: Vec<&str> = Vec::new();
    let mut messages = Vec::new();
    for record in records {
        let mut message = Vec::new();
        key(&mut message, 1, 0);
        varint(
            &mut message,
            index_of(&mut partition_keys, record.partition_key),
        );
        if let Some(hash_key) = record.explicit_hash_key {
            key(&mut message, 2, 0);
            varint(&mut message, index_of(&mut hash_keys, hash_key));
        }
        len_field(&mut message, 3, record.data);
        messages.push(message);
    }
    let mut body = Vec::new();
    for k in &partition_keys {
        len_field(&mut body, 1, k.as_bytes());
    }
    for k in &hash_keys {
        len_field(&mut body, 2, k.as_bytes());
    }
    for m in &messages {
        len_field(&mut body, 3, m);
    }
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&body);
    out.extend_from_slice(&Md5::digest(&body));
    out
}

fn index_of<'a>(table: &mut Vec<&'a str>, k: &'a str) -> u64 {
    match table.iter().position(|t| *t == k) {
        Some(i) => i as u64,
        None => {
            table.push(k);
            (table.len() - 1) as u64
        }
    }
}

fn key(out: &mut Vec<u8>, field: u64, wire: u8) {
    varint(out, field << 3 | u64::from(wire));
}

fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn len_field(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    key(out, field, 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}
