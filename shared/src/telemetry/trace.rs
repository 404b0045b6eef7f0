//! The invocation's X-Ray trace, carried into Kafka as a W3C `traceparent`
//! header, so that a consumer can join the trace.
//!
//! Lambda gives the trace as `Root=1-<8 hex: epoch>-<24 hex>;Parent=<16
//! hex>;Sampled=<0|1>` (the context's `xray_trace_id`, also
//! `_X_AMZN_TRACE_ID`). W3C Trace Context writes the same trace as
//! `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`: X-Ray's trace
//! id is the root without its version and dash, the parent is the segment
//! of the function's invocation, and flag `01` means sampled. X-Ray reads
//! W3C ids in this form, so a consumer that continues the trace lands in
//! the same X-Ray trace.

/// The Kafka header that carries the trace.
pub const TRACEPARENT_HEADER: &str = "traceparent";

/// The `traceparent` for an X-Ray trace header, or `None` when the header
/// lacks a root or a parent, or either is malformed.
pub fn traceparent(xray_trace_id: &str) -> Option<String> {
    let mut root = None;
    let mut parent = None;
    let mut sampled = false;
    for part in xray_trace_id.split(';') {
        match part.trim().split_once('=') {
            Some(("Root", value)) => root = Some(value),
            Some(("Parent", value)) => parent = Some(value),
            Some(("Sampled", value)) => sampled = value == "1",
            _ => {}
        }
    }
    let (epoch, random) = root?.strip_prefix("1-")?.split_once('-')?;
    let parent = parent?;
    let hex =
        |text: &str, len: usize| text.len() == len && text.bytes().all(|b| b.is_ascii_hexdigit());
    if !hex(epoch, 8) || !hex(random, 24) || !hex(parent, 16) {
        return None;
    }
    let trace_id = format!("{epoch}{random}").to_ascii_lowercase();
    let parent = parent.to_ascii_lowercase();
    // All-zero ids are invalid in W3C Trace Context.
    if trace_id.bytes().all(|b| b == b'0') || parent.bytes().all(|b| b == b'0') {
        return None;
    }
    let flags = if sampled { "01" } else { "00" };
    Some(format!("00-{trace_id}-{parent}-{flags}"))
}

/// Gives `headers` the invocation's `traceparent` unless they carry a valid
/// one already (a record passed on keeps its producer's trace). Returns
/// whether it added one.
pub fn stamp(
    headers: &mut std::collections::BTreeMap<String, Vec<u8>>,
    traceparent: Option<&str>,
) -> bool {
    let Some(traceparent) = traceparent else {
        return false;
    };
    if headers.get(TRACEPARENT_HEADER).is_some_and(|v| is_valid(v)) {
        return false;
    }
    headers.insert(
        TRACEPARENT_HEADER.to_owned(),
        traceparent.as_bytes().to_vec(),
    );
    true
}

/// Whether `value` is a `traceparent` a consumer can use: version `00`
/// (or a later version's first four fields), lower-case hex ids that are
/// not all zeros.
pub fn is_valid(value: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(value) else {
        return false;
    };
    let fields: Vec<&str> = text.split('-').collect();
    let [version, trace_id, parent, flags, rest @ ..] = fields.as_slice() else {
        return false;
    };
    let hex = |text: &str, len: usize| {
        text.len() == len && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    hex(version, 2)
        && *version != "ff"
        && (rest.is_empty() || *version != "00")
        && hex(trace_id, 32)
        && hex(parent, 16)
        && hex(flags, 2)
        && trace_id.bytes().any(|b| b != b'0')
        && parent.bytes().any(|b| b != b'0')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lambda_trace_header_becomes_the_exact_traceparent() {
        assert_eq!(
            traceparent(
                "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
            )
            .as_deref(),
            Some("00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01")
        );
        assert_eq!(
            traceparent("Root=1-67AB0C1D-0123456789ABCDEF01234567;Parent=FEDCBA9876543210;Sampled=0;Lineage=a:1")
                .as_deref(),
            Some("00-67ab0c1d0123456789abcdef01234567-fedcba9876543210-00")
        );
    }

    #[test]
    fn a_header_without_a_usable_root_or_parent_gives_none() {
        for header in [
            "",
            "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1",
            "Parent=53995c3f42cd8ad8;Sampled=1",
            "Root=2-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8",
            "Root=1-5759e988-bd862e3fe1be46a99427279;Parent=53995c3f42cd8ad8",
            "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad",
            "Root=1-00000000-000000000000000000000000;Parent=53995c3f42cd8ad8",
            "Root=1-5759e988-bd862e3fe1be46a99427279z;Parent=53995c3f42cd8ad8",
        ] {
            assert_eq!(traceparent(header), None, "{header}");
        }
    }

    #[test]
    fn a_valid_traceparent_passed_on_is_kept_and_a_broken_one_replaced() {
        let ours = "00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01";
        let upstream = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        let mut headers = std::collections::BTreeMap::new();
        assert!(!stamp(&mut headers, None));
        assert!(headers.is_empty());
        assert!(stamp(&mut headers, Some(ours)));
        assert_eq!(headers[TRACEPARENT_HEADER], ours.as_bytes());
        headers.insert(TRACEPARENT_HEADER.into(), upstream.into());
        assert!(!stamp(&mut headers, Some(ours)));
        assert_eq!(headers[TRACEPARENT_HEADER], upstream.as_bytes());
        headers.insert(TRACEPARENT_HEADER.into(), b"garbage".to_vec());
        assert!(stamp(&mut headers, Some(ours)));
        assert_eq!(headers[TRACEPARENT_HEADER], ours.as_bytes());
    }

    #[test]
    fn valid_traceparents_are_told_from_broken_ones() {
        assert!(is_valid(
            b"00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01"
        ));
        assert!(is_valid(
            b"01-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01-extra"
        ));
        for broken in [
            &b"00-5759E988BD862E3FE1BE46A994272793-53995c3f42cd8ad8-01"[..],
            b"00-00000000000000000000000000000000-53995c3f42cd8ad8-01",
            b"00-5759e988bd862e3fe1be46a994272793-0000000000000000-01",
            b"ff-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01",
            b"00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8-01-extra",
            b"00-5759e988bd862e3fe1be46a994272793-53995c3f42cd8ad8",
            b"\xff\xfe",
        ] {
            assert!(!is_valid(broken), "{}", String::from_utf8_lossy(broken));
        }
    }
}
