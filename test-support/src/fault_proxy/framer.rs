//! Frame boundaries in a Kafka byte stream, found as the bytes pass a relay.
//!
//! Every Kafka frame is a 4-byte big-endian length and then that many
//! bytes, whose first few are the header (the API key, version and
//! correlation id of a request; the correlation id of a response). A
//! [`Framer`] sees those headers and frame ends whatever the reads look like
//! (a frame split over many reads, several frames in one read) and by
//! default lets each byte through as soon as it comes. An [`Inspector`]
//! can ask it to hold a frame back whole, to swallow or rewrite it, and
//! can insert bytes between frames.

/// What becomes of a frame once its header is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Its bytes go on as they come.
    Pass,
    /// It is kept until complete, then handed to [`Inspector::whole`].
    Hold,
}

/// Decides, frame by frame, what a [`Framer`] lets through.
pub(super) trait Inspector {
    /// Whether the head (length and header) of the frame starting now is
    /// kept back until [`Inspector::header`] has seen it. Only a frame
    /// whose head was kept back can be held.
    fn withhold_head(&mut self) -> bool;

    /// The frame's header is known: its first `header` bytes after the
    /// length. `can_hold` says whether a [`Verdict::Hold`] will be honoured.
    fn header(&mut self, header: &[u8], can_hold: bool) -> Verdict;

    /// A held frame, length included, is complete: what to send in its
    /// place (nothing swallows it).
    fn whole(&mut self, frame: Vec<u8>) -> Vec<u8>;

    /// Between two frames: bytes to insert there.
    fn between(&mut self, _out: &mut Vec<u8>) {}
}

/// Above this a frame is never held: no test request comes near it, and a
/// length this large means the stream is not Kafka at all.
const MAX_HELD: usize = 64 << 20;

/// Where a stream of Kafka frames stands.
#[derive(Debug)]
pub(super) struct Framer {
    header_len: usize,
    state: State,
}

#[derive(Debug)]
enum State {
    /// Reading a frame's length and header; `emitted` of `bytes` went on.
    Head {
        bytes: Vec<u8>,
        emitted: usize,
        withhold: bool,
    },
    /// Passing a frame's body through: this many bytes to go.
    Body { left: usize },
    /// Keeping a frame whole: what came so far and how much is to come.
    Held { frame: Vec<u8>, left: usize },
}

impl State {
    fn start() -> Self {
        Self::Head {
            bytes: Vec::new(),
            emitted: 0,
            withhold: false,
        }
    }
}

impl Framer {
    /// A framer for a stream whose frames start with `header_len` header
    /// bytes after the length (8 for requests, 4 for responses).
    pub(super) fn new(header_len: usize) -> Self {
        Self {
            header_len,
            state: State::start(),
        }
    }

    /// Whether the stream is between two frames, so that bytes inserted now
    /// land on a frame boundary.
    pub(super) fn at_boundary(&self) -> bool {
        matches!(&self.state, State::Head { bytes, .. } if bytes.is_empty())
    }

    /// Takes `input` in, appending to `out` what goes on.
    pub(super) fn feed(
        &mut self,
        mut input: &[u8],
        inspector: &mut impl Inspector,
        out: &mut Vec<u8>,
    ) {
        while !input.is_empty() {
            match &mut self.state {
                State::Head {
                    bytes,
                    emitted,
                    withhold,
                } => {
                    if bytes.is_empty() {
                        *withhold = inspector.withhold_head();
                    }
                    let want = head_len(bytes, self.header_len) - bytes.len();
                    let (taken, rest) = input.split_at(want.min(input.len()));
                    bytes.extend_from_slice(taken);
                    input = rest;
                    if !*withhold {
                        out.extend_from_slice(&bytes[*emitted..]);
                        *emitted = bytes.len();
                    }
                    if bytes.len() == head_len(bytes, self.header_len) {
                        self.head_complete(inspector, out);
                    }
                }
                State::Body { left } => {
                    let (taken, rest) = input.split_at((*left).min(input.len()));
                    out.extend_from_slice(taken);
                    input = rest;
                    *left -= taken.len();
                    if *left == 0 {
                        self.frame_complete(inspector, out);
                    }
                }
                State::Held { frame, left } => {
                    let (taken, rest) = input.split_at((*left).min(input.len()));
                    frame.extend_from_slice(taken);
                    input = rest;
                    *left -= taken.len();
                    if *left == 0 {
                        self.frame_complete(inspector, out);
                    }
                }
            }
        }
    }

    fn head_complete(&mut self, inspector: &mut impl Inspector, out: &mut Vec<u8>) {
        let State::Head { bytes, emitted, .. } =
            std::mem::replace(&mut self.state, State::Body { left: 0 })
        else {
            return;
        };
        let length = frame_len(&bytes);
        let left = length - (bytes.len() - 4);
        let verdict = if bytes.len() - 4 == self.header_len {
            inspector.header(&bytes[4..], emitted == 0 && length <= MAX_HELD)
        } else {
            // Too short for a header: not a frame anyone inspects.
            Verdict::Pass
        };
        self.state = if verdict == Verdict::Hold && emitted == 0 && length <= MAX_HELD {
            State::Held { frame: bytes, left }
        } else {
            out.extend_from_slice(&bytes[emitted..]);
            State::Body { left }
        };
        if left == 0 {
            self.frame_complete(inspector, out);
        }
    }

    fn frame_complete(&mut self, inspector: &mut impl Inspector, out: &mut Vec<u8>) {
        if let State::Held { frame, .. } = std::mem::replace(&mut self.state, State::start()) {
            out.extend(inspector.whole(frame));
        }
        inspector.between(out);
    }
}

/// How long the head of the frame in `bytes` is: the length, then as much
/// of the header as the frame has.
fn head_len(bytes: &[u8], header_len: usize) -> usize {
    if bytes.len() < 4 {
        4
    } else {
        4 + frame_len(bytes).min(header_len)
    }
}

/// The frame length in the first four bytes. A negative length, which no
/// Kafka peer sends, reads as a huge one: the rest of the stream then
/// passes untouched.
fn frame_len(bytes: &[u8]) -> usize {
    let length = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    usize::try_from(length).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(header: &[u8], body: &[u8]) -> Vec<u8> {
        let mut frame = u32::try_from(header.len() + body.len())
            .unwrap()
            .to_be_bytes()
            .to_vec();
        frame.extend(header);
        frame.extend(body);
        frame
    }

    /// Records every header, holds frames whose header starts with `hold`,
    /// swallows them, and inserts `insert` after the next frame end.
    #[derive(Default)]
    struct Recorder {
        withhold: bool,
        hold: Option<u8>,
        headers: Vec<Vec<u8>>,
        held: Vec<Vec<u8>>,
        insert: Vec<u8>,
    }

    impl Inspector for Recorder {
        fn withhold_head(&mut self) -> bool {
            self.withhold
        }
        fn header(&mut self, header: &[u8], can_hold: bool) -> Verdict {
            self.headers.push(header.to_vec());
            if can_hold && self.hold == Some(header[0]) {
                Verdict::Hold
            } else {
                Verdict::Pass
            }
        }
        fn whole(&mut self, frame: Vec<u8>) -> Vec<u8> {
            self.held.push(frame);
            Vec::new()
        }
        fn between(&mut self, out: &mut Vec<u8>) {
            out.append(&mut self.insert);
        }
    }

    fn stream() -> (Vec<u8>, Vec<Vec<u8>>) {
        let frames = vec![
            frame(&[1, 0, 0, 7, 0, 0, 0, 1], b"first body"),
            frame(&[2, 0, 0, 7, 0, 0, 0, 2], b""),
            frame(&[3, 0, 0, 7, 0, 0, 0, 3], &[9; 300]),
        ];
        (frames.concat(), frames)
    }

    /// Feeds `input` in pieces of `size` bytes.
    fn run(input: &[u8], size: usize, recorder: &mut Recorder) -> Vec<u8> {
        let mut framer = Framer::new(8);
        let mut out = Vec::new();
        for piece in input.chunks(size) {
            framer.feed(piece, recorder, &mut out);
        }
        assert!(framer.at_boundary(), "ends between frames");
        out
    }

    #[test]
    fn headers_are_seen_whatever_the_reads_and_every_byte_passes() {
        let (input, _) = stream();
        for size in 1..=input.len() {
            let mut recorder = Recorder::default();
            let out = run(&input, size, &mut recorder);
            assert_eq!(out, input, "reads of {size}");
            assert_eq!(
                recorder.headers,
                vec![
                    vec![1, 0, 0, 7, 0, 0, 0, 1],
                    vec![2, 0, 0, 7, 0, 0, 0, 2],
                    vec![3, 0, 0, 7, 0, 0, 0, 3],
                ],
                "reads of {size}"
            );
        }
    }

    #[test]
    fn bytes_pass_as_they_come_unless_asked_otherwise() {
        let (input, _) = stream();
        let mut framer = Framer::new(8);
        let mut recorder = Recorder::default();
        let mut out = Vec::new();
        framer.feed(&input[..2], &mut recorder, &mut out);
        assert_eq!(out, input[..2], "half a length goes on at once");
        assert!(!framer.at_boundary());
    }

    #[test]
    fn a_held_frame_is_swallowed_whole_and_the_others_pass() {
        let (input, frames) = stream();
        for size in 1..=input.len() {
            let mut recorder = Recorder {
                withhold: true,
                hold: Some(1),
                ..Default::default()
            };
            let out = run(&input, size, &mut recorder);
            assert_eq!(
                out,
                [&frames[1][..], &frames[2][..]].concat(),
                "reads of {size}"
            );
            assert_eq!(recorder.held, vec![frames[0].clone()], "reads of {size}");
        }
    }

    #[test]
    fn a_frame_whose_head_already_went_on_is_not_held() {
        let (input, _) = stream();
        let mut recorder = Recorder {
            withhold: false,
            hold: Some(1),
            ..Default::default()
        };
        assert_eq!(run(&input, 3, &mut recorder), input);
        assert!(recorder.held.is_empty());
    }

    #[test]
    fn inserted_bytes_land_between_frames() {
        let (input, frames) = stream();
        for size in 1..=input.len() {
            let mut recorder = Recorder {
                insert: b"INSERTED".to_vec(),
                ..Default::default()
            };
            let out = run(&input, size, &mut recorder);
            let want = [&frames[0][..], b"INSERTED", &frames[1][..], &frames[2][..]].concat();
            assert_eq!(out, want, "reads of {size}");
        }
    }

    #[test]
    fn a_frame_too_short_for_a_header_passes_uninspected() {
        let input = [frame(&[1, 2], b""), frame(&[1, 0, 0, 0, 0, 0, 0, 5], b"x")].concat();
        for size in 1..=input.len() {
            let mut recorder = Recorder::default();
            assert_eq!(run(&input, size, &mut recorder), input);
            assert_eq!(recorder.headers, vec![vec![1, 0, 0, 0, 0, 0, 0, 5]]);
        }
    }
}
