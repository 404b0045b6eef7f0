//! The few pieces of the Kafka wire protocol that the fault proxy reads and
//! writes: frames, primitive types, and produce requests and responses.
//!
//! Produce is handled in its non-flexible versions (0 to 8). rskafka 0.6
//! sends versions 3 to 7 and picks the highest the broker also offers, which
//! against Apache Kafka 3.9 and 4.x is 7; the flexible versions (9 and later, compact
//! encodings and tagged fields) never reach these helpers.

use std::io;
/// Kafka API keys, as the first field of every request header carries them.
pub mod api_key {
    /// Produce.
    pub const PRODUCE: i16 = 0;
    /// Metadata.
    pub const METADATA: i16 = 3;
    /// SaslHandshake.
    pub const SASL_HANDSHAKE: i16 = 17;
    /// ApiVersions.
    pub const API_VERSIONS: i16 = 18;
    /// SaslAuthenticate.
    pub const SASL_AUTHENTICATE: i16 = 36;
}

/// The error code a partition's former leader answers with.
pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;

/// Produce requests and responses switch to compact encodings here.
const FIRST_FLEXIBLE_PRODUCE: i16 = 9;

/// A response frame (without its length): the header, then `body`.
pub(super) fn response(correlation_id: i32, flexible_header: bool, body: &[u8]) -> Vec<u8> {
    let mut frame = correlation_id.to_be_bytes().to_vec();
    if flexible_header {
        frame.push(0);
    }
    frame.extend(body);
    frame
}

pub(super) fn put_string(out: &mut Vec<u8>, text: &str) {
    out.extend(u16::try_from(text.len()).unwrap_or(u16::MAX).to_be_bytes());
    out.extend(text.as_bytes());
}

fn put_array_len(out: &mut Vec<u8>, len: usize) {
    out.extend(i32::try_from(len).unwrap_or(i32::MAX).to_be_bytes());
}

/// `frame` with its 4-byte length in front, as it goes on the wire.
pub(super) fn with_length(frame: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(frame.len() + 4);
    put_array_len(&mut out, frame.len());
    out.extend(frame);
    out
}

fn length(raw: i64) -> io::Result<usize> {
    usize::try_from(raw).map_err(|_| io::ErrorKind::InvalidData.into())
}

/// Reads Kafka wire types from a byte slice.
pub(super) struct Reader<'a> {
    rest: &'a [u8],
    consumed: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Self {
        Self {
            rest: bytes,
            consumed: 0,
        }
    }

    /// How far into the slice the reader is.
    pub(super) fn position(&self) -> usize {
        self.consumed
    }

    /// Whether everything was read.
    pub(super) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    pub(super) fn take(&mut self, n: usize) -> io::Result<&'a [u8]> {
        if n > self.rest.len() {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        self.consumed += n;
        Ok(head)
    }

    pub(super) fn i16(&mut self) -> io::Result<i16> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    pub(super) fn i32(&mut self) -> io::Result<i32> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A non-negative array length.
    fn array_len(&mut self) -> io::Result<usize> {
        let n = self.i32()?;
        length(n.into())
    }

    pub(super) fn string(&mut self) -> io::Result<String> {
        let n = self.i16()?;
        let n = length(n.into())?;
        let bytes = self.take(n)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| io::ErrorKind::InvalidData.into())
    }

    /// A nullable, non-compact string, such as every request header's
    /// client id.
    pub(super) fn skip_nullable_string(&mut self) -> io::Result<()> {
        let n = self.i16()?;
        if n >= 0 {
            let n = length(n.into())?;
            self.take(n)?;
        }
        Ok(())
    }

    /// Nullable bytes; null reads as empty.
    fn nullable_bytes(&mut self) -> io::Result<&'a [u8]> {
        let n = self.i32()?;
        if n < 0 {
            return Ok(&[]);
        }
        self.take(length(n.into())?)
    }
}

/// A produce request's partitions: index and record batches.
pub(super) type Partitions<'a> = Vec<(i32, &'a [u8])>;

/// A produce request, as far as answering it needs.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct ProduceRequest<'a> {
    pub(super) version: i16,
    pub(super) correlation_id: i32,
    /// Topic by topic, each partition's index and record batches.
    pub(super) topics: Vec<(String, Partitions<'a>)>,
}

impl<'a> ProduceRequest<'a> {
    /// Reads `frame` (a request without its length). `None` when it is
    /// another request, or a produce request in a flexible version.
    pub(super) fn parse(frame: &'a [u8]) -> io::Result<Option<Self>> {
        let mut r = Reader::new(frame);
        let api_key = r.i16()?;
        let version = r.i16()?;
        let correlation_id = r.i32()?;
        if api_key != api_key::PRODUCE || !(0..FIRST_FLEXIBLE_PRODUCE).contains(&version) {
            return Ok(None);
        }
        r.skip_nullable_string()?; // client id (request header v1)
        if version >= 3 {
            r.skip_nullable_string()?; // transactional id
        }
        r.i16()?; // acks
        r.i32()?; // timeout
        let mut topics = Vec::new();
        for _ in 0..r.array_len()? {
            let name = r.string()?;
            let mut partitions = Vec::new();
            for _ in 0..r.array_len()? {
                let index = r.i32()?;
                partitions.push((index, r.nullable_bytes()?));
            }
            topics.push((name, partitions));
        }
        Ok(Some(Self {
            version,
            correlation_id,
            topics,
        }))
    }

    /// The response (without its length) of a broker that appended none of
    /// the request: `error_code` for every partition in it.
    pub(super) fn refusal(&self, error_code: i16) -> Vec<u8> {
        let version = self.version;
        let mut body = Vec::new();
        put_array_len(&mut body, self.topics.len());
        for (name, partitions) in &self.topics {
            put_string(&mut body, name);
            put_array_len(&mut body, partitions.len());
            for (index, _) in partitions {
                body.extend(index.to_be_bytes());
                body.extend(error_code.to_be_bytes());
                body.extend((-1i64).to_be_bytes()); // base offset
                if version >= 2 {
                    body.extend((-1i64).to_be_bytes()); // log append time
                }
                if version >= 5 {
                    body.extend((-1i64).to_be_bytes()); // log start offset
                }
                if version >= 8 {
                    put_array_len(&mut body, 0); // record errors
                    body.extend((-1i16).to_be_bytes()); // error message: null
                }
            }
        }
        if version >= 1 {
            body.extend(0i32.to_be_bytes()); // throttle time
        }
        response(self.correlation_id, false, &body)
    }
}

/// Sets every partition of a produce response (`frame`, without its
/// length, header v0) to `error_code` with no offset, in place. Returns how
/// many partitions it changed.
pub(super) fn set_produce_errors(
    frame: &mut [u8],
    version: i16,
    error_code: i16,
) -> io::Result<usize> {
    if !(0..FIRST_FLEXIBLE_PRODUCE).contains(&version) {
        return Err(io::ErrorKind::Unsupported.into());
    }
    // Where each partition's error code starts; its base offset follows.
    let mut codes = Vec::new();
    let mut r = Reader::new(frame);
    r.i32()?; // correlation id
    for _ in 0..r.array_len()? {
        r.string()?;
        for _ in 0..r.array_len()? {
            r.i32()?; // partition index
            codes.push(r.position());
            r.take(2 + 8)?; // error code, base offset
            if version >= 2 {
                r.take(8)?; // log append time
            }
            if version >= 5 {
                r.take(8)?; // log start offset
            }
            if version >= 8 {
                for _ in 0..r.array_len()? {
                    r.i32()?; // batch index
                    r.skip_nullable_string()?;
                }
                r.skip_nullable_string()?; // error message
            }
        }
    }
    if version >= 1 {
        r.i32()?; // throttle time
    }
    if !r.is_empty() {
        return Err(io::ErrorKind::InvalidData.into());
    }
    for &at in &codes {
        frame[at..at + 2].copy_from_slice(&error_code.to_be_bytes());
        frame[at + 2..at + 10].copy_from_slice(&(-1i64).to_be_bytes());
    }
    Ok(codes.len())
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Partitions as a test writes them: index and record bytes.
    pub(crate) type TestPartitions<'a> = &'a [(i32, &'a [u8])];

    /// A produce request frame (without its length), written field by field
    /// as the protocol lays it out.
    pub(crate) fn produce_request(
        version: i16,
        correlation_id: i32,
        topics: &[(&str, TestPartitions<'_>)],
    ) -> Vec<u8> {
        let mut frame = Vec::new();
        frame.extend(api_key::PRODUCE.to_be_bytes());
        frame.extend(version.to_be_bytes());
        frame.extend(correlation_id.to_be_bytes());
        put_string(&mut frame, "test-client");
        if version >= 3 {
            frame.extend((-1i16).to_be_bytes());
        }
        frame.extend((-1i16).to_be_bytes()); // acks
        frame.extend(30_000i32.to_be_bytes());
        put_array_len(&mut frame, topics.len());
        for (name, partitions) in topics {
            put_string(&mut frame, name);
            put_array_len(&mut frame, partitions.len());
            for (index, records) in *partitions {
                frame.extend(index.to_be_bytes());
                put_array_len(&mut frame, records.len());
                frame.extend(*records);
            }
        }
        frame
    }

    /// A produce response frame (without its length) where partition `p`
    /// has error 0 and base offset `100 + p`.
    pub(crate) fn produce_response(
        version: i16,
        correlation_id: i32,
        topics: &[(&str, &[i32])],
    ) -> Vec<u8> {
        let mut body = Vec::new();
        put_array_len(&mut body, topics.len());
        for (name, partitions) in topics {
            put_string(&mut body, name);
            put_array_len(&mut body, partitions.len());
            for &index in *partitions {
                body.extend(index.to_be_bytes());
                body.extend(0i16.to_be_bytes());
                body.extend((100 + i64::from(index)).to_be_bytes());
                if version >= 2 {
                    body.extend((-1i64).to_be_bytes());
                }
                if version >= 5 {
                    body.extend(7i64.to_be_bytes());
                }
                if version >= 8 {
                    put_array_len(&mut body, 1);
                    body.extend(0i32.to_be_bytes());
                    put_string(&mut body, "batch note");
                    put_string(&mut body, "note");
                }
            }
        }
        if version >= 1 {
            body.extend(0i32.to_be_bytes());
        }
        response(correlation_id, false, &body)
    }

    /// Each partition of a produce response: (topic, index, error code,
    /// base offset).
    pub(crate) fn read_produce_response(
        frame: &[u8],
        version: i16,
    ) -> Vec<(String, i32, i16, i64)> {
        let mut r = Reader::new(frame);
        r.i32().unwrap();
        let mut partitions = Vec::new();
        for _ in 0..r.array_len().unwrap() {
            let name = r.string().unwrap();
            for _ in 0..r.array_len().unwrap() {
                let index = r.i32().unwrap();
                let error = r.i16().unwrap();
                let offset = i64::from_be_bytes(r.take(8).unwrap().try_into().unwrap());
                if version >= 2 {
                    r.take(8).unwrap();
                }
                if version >= 5 {
                    r.take(8).unwrap();
                }
                if version >= 8 {
                    for _ in 0..r.array_len().unwrap() {
                        r.i32().unwrap();
                        r.skip_nullable_string().unwrap();
                    }
                    r.skip_nullable_string().unwrap();
                }
                partitions.push((name.clone(), index, error, offset));
            }
        }
        if version >= 1 {
            r.i32().unwrap();
        }
        assert!(r.is_empty(), "version {version}: trailing bytes");
        partitions
    }

    #[test]
    fn a_produce_request_names_its_topics_partitions_and_records() {
        for version in [0, 2, 3, 7, 8] {
            let frame = produce_request(
                version,
                42,
                &[("a", &[(0, b"r0"), (3, b"r3")]), ("b", &[(1, b"")])],
            );
            let request = ProduceRequest::parse(&frame).unwrap().unwrap();
            assert_eq!(request.version, version);
            assert_eq!(request.correlation_id, 42);
            assert_eq!(
                request.topics,
                vec![
                    ("a".to_owned(), vec![(0, &b"r0"[..]), (3, &b"r3"[..])]),
                    ("b".to_owned(), vec![(1, &b""[..])]),
                ]
            );
        }
    }

    #[test]
    fn other_requests_and_flexible_produce_versions_are_not_read_as_produce() {
        let mut metadata = api_key::METADATA.to_be_bytes().to_vec();
        metadata.extend(4i16.to_be_bytes());
        metadata.extend(1i32.to_be_bytes());
        assert_eq!(ProduceRequest::parse(&metadata).unwrap(), None);
        let flexible = produce_request(9, 1, &[]);
        assert_eq!(ProduceRequest::parse(&flexible).unwrap(), None);
        let cut = produce_request(7, 1, &[("a", &[(0, b"records")])]);
        assert!(ProduceRequest::parse(&cut[..cut.len() - 1]).is_err());
    }

    #[test]
    fn a_refusal_answers_every_partition_with_the_error_in_each_version() {
        for version in 0..=8 {
            let frame = produce_request(
                version,
                9,
                &[("a", &[(0, b"x"), (2, b"y")]), ("b", &[(5, b"z")])],
            );
            let refusal = ProduceRequest::parse(&frame)
                .unwrap()
                .unwrap()
                .refusal(NOT_LEADER_OR_FOLLOWER);
            assert_eq!(&refusal[..4], &9i32.to_be_bytes(), "correlation id");
            assert_eq!(
                read_produce_response(&refusal, version),
                vec![
                    ("a".to_owned(), 0, NOT_LEADER_OR_FOLLOWER, -1),
                    ("a".to_owned(), 2, NOT_LEADER_OR_FOLLOWER, -1),
                    ("b".to_owned(), 5, NOT_LEADER_OR_FOLLOWER, -1),
                ],
                "version {version}"
            );
        }
    }

    #[test]
    fn a_rewritten_response_says_not_leader_for_every_partition_and_keeps_the_rest() {
        for version in 0..=8 {
            let original = produce_response(version, 5, &[("a", &[0, 4]), ("b", &[1])]);
            let mut frame = original.clone();
            assert_eq!(
                set_produce_errors(&mut frame, version, NOT_LEADER_OR_FOLLOWER).unwrap(),
                3
            );
            assert_eq!(frame.len(), original.len());
            assert_eq!(
                read_produce_response(&frame, version),
                vec![
                    ("a".to_owned(), 0, NOT_LEADER_OR_FOLLOWER, -1),
                    ("a".to_owned(), 4, NOT_LEADER_OR_FOLLOWER, -1),
                    ("b".to_owned(), 1, NOT_LEADER_OR_FOLLOWER, -1),
                ],
                "version {version}"
            );
            // Only the error codes and base offsets changed: 10 bytes each.
            let changed = frame.iter().zip(&original).filter(|(a, b)| a != b).count();
            assert!(
                changed <= 3 * 10,
                "version {version}: {changed} bytes changed"
            );
        }
    }

    #[test]
    fn a_response_that_does_not_parse_is_left_alone() {
        let original = produce_response(7, 5, &[("a", &[0])]);
        let mut cut = original[..original.len() - 2].to_vec();
        let before = cut.clone();
        assert!(set_produce_errors(&mut cut, 7, NOT_LEADER_OR_FOLLOWER).is_err());
        assert_eq!(cut, before);
        let mut long = original.clone();
        long.push(0);
        assert!(set_produce_errors(&mut long, 7, NOT_LEADER_OR_FOLLOWER).is_err());
        let mut frame = original;
        assert!(set_produce_errors(&mut frame, 9, NOT_LEADER_OR_FOLLOWER).is_err());
    }
}
