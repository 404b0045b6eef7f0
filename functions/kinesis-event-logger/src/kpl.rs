//! De-aggregation of Kinesis Producer Library (KPL) aggregated records.
//!
//! An aggregated record's data is laid out as:
//!
//! ```text
//! F3 89 9A C2 | protobuf AggregatedRecord | MD5(protobuf) (16 bytes)
//! ```
//!
//! ```protobuf
//! message AggregatedRecord {
//!   repeated string partition_key_table     = 1;
//!   repeated string explicit_hash_key_table = 2;
//!   repeated Record records                 = 3;
//! }
//! message Record {
//!   required uint64 partition_key_index     = 1;
//!   optional uint64 explicit_hash_key_index = 2;
//!   required bytes  data                    = 3;
//!   repeated Tag    tags                    = 4;  // skipped
//! }
//! ```
//!
//! The reader is written by hand because it needs only varints and
//! length-delimited fields, and it borrows every key and payload from the
//! input instead of copying. It never panics: every length and index is
//! checked, and anything unexpected is a [`KplError`], so a corrupt aggregate
//! can be logged raw instead of crashing the function.

use md5::{Digest, Md5};

/// The four bytes every KPL aggregate starts with.
pub const MAGIC: [u8; 4] = [0xF3, 0x89, 0x9A, 0xC2];

/// Length of the MD5 trailer.
const DIGEST_LEN: usize = 16;

/// Protobuf wire types this format uses or must skip.
const WIRE_VARINT: u8 = 0;
const WIRE_FIXED64: u8 = 1;
const WIRE_LEN: u8 = 2;
const WIRE_FIXED32: u8 = 5;

/// Why an aggregate could not be de-aggregated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KplError {
    /// Too short to hold the magic prefix, a body and the MD5 trailer.
    #[error("aggregate is {len} bytes, too short for the magic prefix and MD5 trailer")]
    TooShort {
        /// The data's length.
        len: usize,
    },
    /// The MD5 trailer does not match the protobuf body.
    #[error("MD5 trailer does not match the protobuf body")]
    DigestMismatch,
    /// The protobuf body is malformed.
    #[error("bad protobuf at byte {offset} of the body: {problem}")]
    Protobuf {
        /// Where in the protobuf body the problem was found.
        offset: usize,
        /// What was wrong.
        problem: &'static str,
    },
    /// A user record lacks a required field.
    #[error("user record {record} has no {field}")]
    MissingField {
        /// Index of the user record within the aggregate.
        record: usize,
        /// The missing field's name.
        field: &'static str,
    },
    /// A user record points past the end of a key table.
    #[error("user record {record} has {table} index {index}, but the table has {len} entries")]
    IndexOutOfRange {
        /// Index of the user record within the aggregate.
        record: usize,
        /// Which table.
        table: &'static str,
        /// The index found.
        index: u64,
        /// The table's length.
        len: usize,
    },
    /// The aggregate holds no user records, which the KPL never writes.
    #[error("aggregate holds no user records")]
    Empty,
}

/// One user record out of an aggregate, borrowed from the aggregate's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserRecord<'a> {
    /// The partition key, from the partition key table.
    pub partition_key: &'a str,
    /// The explicit hash key, when the producer set one.
    pub explicit_hash_key: Option<&'a str>,
    /// The user's payload.
    pub data: &'a [u8],
}

/// Whether `data` carries the KPL magic prefix and so should be de-aggregated.
pub fn is_aggregated(data: &[u8]) -> bool {
    data.starts_with(&MAGIC)
}

/// De-aggregates `data` (magic prefix included) into its user records, in
/// order; a user record's index is its sub-sequence number.
///
/// Either every user record is returned or none is: a partly readable
/// aggregate is reported as an error so the caller can log it raw.
pub fn decode(data: &[u8]) -> Result<Vec<UserRecord<'_>>, KplError> {
    let too_short = KplError::TooShort { len: data.len() };
    let rest = data.strip_prefix(&MAGIC).ok_or(too_short.clone())?;
    let split = rest.len().checked_sub(DIGEST_LEN).ok_or(too_short)?;
    let (body, digest) = rest.split_at(split);
    if Md5::digest(body).as_slice() != digest {
        return Err(KplError::DigestMismatch);
    }
    decode_body(body)
}

/// Reads the protobuf `AggregatedRecord` and resolves the key indices.
fn decode_body(body: &[u8]) -> Result<Vec<UserRecord<'_>>, KplError> {
    let mut partition_keys: Vec<&str> = Vec::new();
    let mut hash_keys: Vec<&str> = Vec::new();
    // Records are resolved after the whole body is read: protobuf allows the
    // key tables to come after the records that index them.
    let mut raw_records: Vec<RawRecord<'_>> = Vec::new();

    let mut reader = Reader::new(body, 0);
    while let Some((field, wire)) = reader.key()? {
        match (field, wire) {
            (1, WIRE_LEN) => partition_keys.push(reader.string()?),
            (2, WIRE_LEN) => hash_keys.push(reader.string()?),
            (3, WIRE_LEN) => {
                let start = reader.pos;
                let bytes = reader.bytes()?;
                raw_records.push(RawRecord::read(bytes, start, raw_records.len())?);
            }
            (1..=3, _) => return Err(reader.error("known field with the wrong wire type")),
            _ => reader.skip(wire)?,
        }
    }

    if raw_records.is_empty() {
        return Err(KplError::Empty);
    }
    raw_records
        .into_iter()
        .enumerate()
        .map(|(record, raw)| {
            let partition_key = lookup(
                &partition_keys,
                raw.partition_key_index,
                record,
                "partition key",
            )?;
            let explicit_hash_key = raw
                .explicit_hash_key_index
                .map(|index| lookup(&hash_keys, index, record, "explicit hash key"))
                .transpose()?;
            Ok(UserRecord {
                partition_key,
                explicit_hash_key,
                data: raw.data,
            })
        })
        .collect()
}

/// Resolves a table index, rejecting one past the end.
fn lookup<'a>(
    table: &[&'a str],
    index: u64,
    record: usize,
    name: &'static str,
) -> Result<&'a str, KplError> {
    usize::try_from(index)
        .ok()
        .and_then(|i| table.get(i))
        .copied()
        .ok_or(KplError::IndexOutOfRange {
            record,
            table: name,
            index,
            len: table.len(),
        })
}

/// A user record before its key indices are resolved.
struct RawRecord<'a> {
    partition_key_index: u64,
    explicit_hash_key_index: Option<u64>,
    data: &'a [u8],
}

impl<'a> RawRecord<'a> {
    /// Reads one `Record` message; `base` is its offset in the body, so
    /// errors point at the right byte.
    fn read(bytes: &'a [u8], base: usize, record: usize) -> Result<Self, KplError> {
        let mut partition_key_index = None;
        let mut explicit_hash_key_index = None;
        let mut data = None;
        let mut reader = Reader::new(bytes, base);
        while let Some((field, wire)) = reader.key()? {
            match (field, wire) {
                (1, WIRE_VARINT) => partition_key_index = Some(reader.varint()?),
                (2, WIRE_VARINT) => explicit_hash_key_index = Some(reader.varint()?),
                (3, WIRE_LEN) => data = Some(reader.bytes()?),
                (1..=3, _) => return Err(reader.error("known field with the wrong wire type")),
                // Field 4 (tags) and anything newer is skipped.
                _ => reader.skip(wire)?,
            }
        }
        Ok(Self {
            partition_key_index: partition_key_index.ok_or(KplError::MissingField {
                record,
                field: "partition_key_index",
            })?,
            explicit_hash_key_index,
            data: data.ok_or(KplError::MissingField {
                record,
                field: "data",
            })?,
        })
    }
}

/// A cursor over protobuf bytes.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Offset of `buf` within the whole body, for error messages.
    base: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], base: usize) -> Self {
        Self { buf, pos: 0, base }
    }

    fn error(&self, problem: &'static str) -> KplError {
        KplError::Protobuf {
            offset: self.base + self.pos,
            problem,
        }
    }

    /// The next field number and wire type, or `None` at the end.
    fn key(&mut self) -> Result<Option<(u64, u8)>, KplError> {
        if self.pos >= self.buf.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let field = key >> 3;
        if field == 0 {
            return Err(self.error("field number 0"));
        }
        // The mask keeps the value below 8, so the cast cannot truncate.
        Ok(Some((field, (key & 0x7) as u8)))
    }

    /// A base-128 varint of at most ten bytes.
    fn varint(&mut self) -> Result<u64, KplError> {
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let Some(&byte) = self.buf.get(self.pos) else {
                return Err(self.error("varint runs past the end"));
            };
            self.pos += 1;
            // The tenth byte may only contribute the top bit.
            if shift == 63 && byte > 1 {
                return Err(self.error("varint overflows 64 bits"));
            }
            value |= u64::from(byte & 0x7F) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.error("varint longer than ten bytes"))
    }

    /// A length-delimited field's bytes.
    fn bytes(&mut self) -> Result<&'a [u8], KplError> {
        let len = self.varint()?;
        let end = usize::try_from(len)
            .ok()
            .and_then(|len| self.pos.checked_add(len))
            .filter(|&end| end <= self.buf.len())
            .ok_or_else(|| self.error("length runs past the end"))?;
        let bytes = self
            .buf
            .get(self.pos..end)
            .ok_or_else(|| self.error("length runs past the end"))?;
        self.pos = end;
        Ok(bytes)
    }

    /// A length-delimited field that must be UTF-8.
    fn string(&mut self) -> Result<&'a str, KplError> {
        let start = self.pos;
        let bytes = self.bytes()?;
        std::str::from_utf8(bytes).map_err(|_| KplError::Protobuf {
            offset: self.base + start,
            problem: "key is not UTF-8",
        })
    }

    /// Skips a field this reader does not need.
    fn skip(&mut self, wire: u8) -> Result<(), KplError> {
        let width = match wire {
            WIRE_VARINT => return self.varint().map(drop),
            WIRE_LEN => return self.bytes().map(drop),
            WIRE_FIXED64 => 8,
            WIRE_FIXED32 => 4,
            _ => return Err(self.error("unsupported wire type")),
        };
        match self.pos.checked_add(width) {
            Some(end) if end <= self.buf.len() => {
                self.pos = end;
                Ok(())
            }
            _ => Err(self.error("fixed-width field runs past the end")),
        }
    }
}

/// Builds aggregates the way the KPL does, for tests and fixtures.
#[cfg(test)]
pub mod encode {
    use super::*;

    /// A user record to aggregate: partition key, optional explicit hash key, data.
    pub type Entry<'a> = (&'a str, Option<&'a str>, &'a [u8]);

    /// Encodes `records` as a KPL aggregate: magic, protobuf body, MD5.
    /// Keys are deduplicated into the tables in order of first use.
    pub fn aggregate(records: &[Entry<'_>]) -> Vec<u8> {
        let body = body(records);
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&body);
        out.extend_from_slice(&Md5::digest(&body));
        out
    }

    /// The protobuf `AggregatedRecord` alone.
    pub fn body(records: &[Entry<'_>]) -> Vec<u8> {
        let mut partition_keys: Vec<&str> = Vec::new();
        let mut hash_keys: Vec<&str> = Vec::new();
        let mut messages = Vec::new();
        for &(partition_key, hash_key, data) in records {
            let mut message = Vec::new();
            key(&mut message, 1, WIRE_VARINT);
            varint(&mut message, index_of(&mut partition_keys, partition_key));
            if let Some(hash_key) = hash_key {
                key(&mut message, 2, WIRE_VARINT);
                varint(&mut message, index_of(&mut hash_keys, hash_key));
            }
            len_field(&mut message, 3, data);
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
        body
    }

    fn index_of<'a>(table: &mut Vec<&'a str>, k: &'a str) -> u64 {
        let i = table.iter().position(|t| *t == k).unwrap_or_else(|| {
            table.push(k);
            table.len() - 1
        });
        i as u64
    }

    /// Appends a field key.
    pub fn key(out: &mut Vec<u8>, field: u64, wire: u8) {
        varint(out, field << 3 | u64::from(wire));
    }

    /// Appends a varint.
    pub fn varint(out: &mut Vec<u8>, mut value: u64) {
        while value >= 0x80 {
            out.push((value as u8) | 0x80);
            value >>= 7;
        }
        out.push(value as u8);
    }

    /// Appends a length-delimited field.
    pub fn len_field(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
        key(out, field, WIRE_LEN);
        varint(out, bytes.len() as u64);
        out.extend_from_slice(bytes);
    }

    /// Wraps a hand-made body in magic and a correct MD5, for malformed-body tests.
    pub fn wrap(body: &[u8]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(body);
        out.extend_from_slice(&Md5::digest(body));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::encode::*;
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decodes_user_records_in_order_with_their_keys() {
        let data = aggregate(&[
            ("alpha", None, b"one"),
            ("beta", Some("12345"), b"two"),
            ("alpha", None, b""),
        ]);
        let records = decode(&data).unwrap();
        assert_eq!(
            records,
            vec![
                UserRecord {
                    partition_key: "alpha",
                    explicit_hash_key: None,
                    data: b"one"
                },
                UserRecord {
                    partition_key: "beta",
                    explicit_hash_key: Some("12345"),
                    data: b"two"
                },
                UserRecord {
                    partition_key: "alpha",
                    explicit_hash_key: None,
                    data: b""
                },
            ]
        );
    }

    #[test]
    fn rejects_a_wrong_md5_trailer() {
        let mut data = aggregate(&[("k", None, b"x")]);
        let last = data.len() - 1;
        data[last] ^= 0xFF;
        assert_eq!(decode(&data), Err(KplError::DigestMismatch));
    }

    #[test]
    fn rejects_data_shorter_than_magic_and_trailer() {
        assert_eq!(decode(&MAGIC), Err(KplError::TooShort { len: 4 }));
        assert_eq!(decode(b"abc"), Err(KplError::TooShort { len: 3 }));
    }

    #[test]
    fn rejects_a_partition_key_index_past_the_table() {
        let mut message = Vec::new();
        key(&mut message, 1, WIRE_VARINT);
        varint(&mut message, 3);
        len_field(&mut message, 3, b"x");
        let mut body = Vec::new();
        len_field(&mut body, 1, b"only");
        len_field(&mut body, 3, &message);
        assert_eq!(
            decode(&wrap(&body)),
            Err(KplError::IndexOutOfRange {
                record: 0,
                table: "partition key",
                index: 3,
                len: 1
            })
        );
    }

    #[test]
    fn rejects_an_explicit_hash_key_index_past_the_table() {
        let mut message = Vec::new();
        key(&mut message, 1, WIRE_VARINT);
        varint(&mut message, 0);
        key(&mut message, 2, WIRE_VARINT);
        varint(&mut message, u64::MAX);
        len_field(&mut message, 3, b"x");
        let mut body = Vec::new();
        len_field(&mut body, 1, b"pk");
        len_field(&mut body, 3, &message);
        assert!(matches!(
            decode(&wrap(&body)),
            Err(KplError::IndexOutOfRange {
                table: "explicit hash key",
                ..
            })
        ));
    }

    #[test]
    fn rejects_a_record_without_data_or_partition_key_index() {
        let mut message = Vec::new();
        key(&mut message, 1, WIRE_VARINT);
        varint(&mut message, 0);
        let mut body = Vec::new();
        len_field(&mut body, 1, b"pk");
        len_field(&mut body, 3, &message);
        assert_eq!(
            decode(&wrap(&body)),
            Err(KplError::MissingField {
                record: 0,
                field: "data"
            })
        );

        let mut message = Vec::new();
        len_field(&mut message, 3, b"x");
        let mut body = Vec::new();
        len_field(&mut body, 3, &message);
        assert_eq!(
            decode(&wrap(&body)),
            Err(KplError::MissingField {
                record: 0,
                field: "partition_key_index"
            })
        );
    }

    #[test]
    fn rejects_an_aggregate_without_records() {
        let mut body = Vec::new();
        len_field(&mut body, 1, b"pk");
        assert_eq!(decode(&wrap(&body)), Err(KplError::Empty));
    }

    #[test]
    fn rejects_truncated_lengths_and_varints() {
        // A length that claims more bytes than remain.
        let body = [0x0A, 0x05, b'a'];
        assert!(matches!(
            decode(&wrap(&body)),
            Err(KplError::Protobuf { .. })
        ));
        // A varint whose continuation bit never clears.
        let body = [0x08, 0xFF, 0xFF];
        assert!(matches!(
            decode(&wrap(&body)),
            Err(KplError::Protobuf { .. })
        ));
        // Eleven continuation bytes overflow 64 bits.
        let mut body = vec![0x08];
        body.extend_from_slice(&[0xFF; 10]);
        body.push(0x01);
        assert!(matches!(
            decode(&wrap(&body)),
            Err(KplError::Protobuf { .. })
        ));
    }

    #[test]
    fn rejects_known_fields_with_the_wrong_wire_type_and_group_wire_types() {
        let body = [0x08, 0x01]; // field 1 as a varint instead of a string
        assert!(matches!(
            decode(&wrap(&body)),
            Err(KplError::Protobuf {
                problem: "known field with the wrong wire type",
                ..
            })
        ));
        let body = [0x3B]; // field 7, wire type 3 (start group)
        assert!(matches!(
            decode(&wrap(&body)),
            Err(KplError::Protobuf {
                problem: "unsupported wire type",
                ..
            })
        ));
    }

    #[test]
    fn rejects_partition_keys_that_are_not_utf8() {
        let mut body = Vec::new();
        len_field(&mut body, 1, &[0xFF, 0xFE]);
        assert!(matches!(
            decode(&wrap(&body)),
            Err(KplError::Protobuf {
                problem: "key is not UTF-8",
                ..
            })
        ));
    }

    #[test]
    fn skips_tags_and_unknown_fields() {
        let mut tag = Vec::new();
        len_field(&mut tag, 1, b"key");
        len_field(&mut tag, 2, b"value");
        let mut message = Vec::new();
        key(&mut message, 1, WIRE_VARINT);
        varint(&mut message, 0);
        len_field(&mut message, 4, &tag);
        key(&mut message, 9, WIRE_FIXED32);
        message.extend_from_slice(&[1, 2, 3, 4]);
        len_field(&mut message, 3, b"payload");
        let mut body = Vec::new();
        key(&mut body, 12, WIRE_FIXED64);
        body.extend_from_slice(&[0; 8]);
        len_field(&mut body, 3, &message);
        // The table may follow the records that index it.
        len_field(&mut body, 1, b"pk");
        assert_eq!(
            decode(&wrap(&body)).unwrap(),
            vec![UserRecord {
                partition_key: "pk",
                explicit_hash_key: None,
                data: b"payload"
            }]
        );
    }

    #[test]
    fn recognises_only_the_magic_prefix() {
        assert!(is_aggregated(&aggregate(&[("k", None, b"x")])));
        assert!(!is_aggregated(b"{\"a\":1}"));
        assert!(!is_aggregated(&MAGIC[..3]));
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode(&data);
        }

        #[test]
        fn decoding_arbitrary_bodies_with_a_valid_md5_never_panics(
            body in proptest::collection::vec(any::<u8>(), 0..512)
        ) {
            let _ = decode(&wrap(&body));
        }

        #[test]
        fn decoding_bodies_built_from_protobuf_fragments_never_panics(
            parts in proptest::collection::vec((1u64..6, 0u8..8, proptest::collection::vec(any::<u8>(), 0..12)), 0..16)
        ) {
            // Plausible keys followed by arbitrary bytes reach deeper into the reader.
            let mut body = Vec::new();
            for (field, wire, bytes) in &parts {
                key(&mut body, *field, *wire);
                body.extend_from_slice(bytes);
            }
            let _ = decode(&wrap(&body));
        }

        #[test]
        fn encoded_aggregates_decode_to_what_went_in(
            records in proptest::collection::vec(
                ("[a-c]{0,3}", proptest::option::of("[0-9]{1,4}"), proptest::collection::vec(any::<u8>(), 0..40)),
                1..8,
            )
        ) {
            let entries: Vec<Entry<'_>> = records
                .iter()
                .map(|(pk, hk, data)| (pk.as_str(), hk.as_deref(), data.as_slice()))
                .collect();
            let data = aggregate(&entries);
            let decoded = decode(&data).unwrap();
            let back: Vec<Entry<'_>> = decoded
                .iter()
                .map(|r| (r.partition_key, r.explicit_hash_key, r.data))
                .collect();
            prop_assert_eq!(back, entries);
        }
    }
}
