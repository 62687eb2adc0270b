use super::*;
use crate::watch::source::Next;

const RUN: &str = "20261207T000515Z-local-drill-c793";
const GOLDEN: &str = include_str!("../../tests/data/golden/20261207T000515Z-local-drill-c793.jsonl");

/// Hands over a script of pieces, one per call, then idles (a run that went quiet).
struct Script(std::collections::VecDeque<Vec<u8>>);

impl Source for Script {
    fn next(&mut self, _wait: Duration) -> Result<Next, Error> {
        Ok(self.0.pop_front().map(Next::Bytes).unwrap_or(Next::Idle))
    }
    fn name(&self) -> String {
        format!("{RUN}.jsonl")
    }
}

/// The trail cut into pieces of `size` bytes: lines split anywhere.
fn pieces(trail: &str, size: usize) -> Script {
    Script(trail.as_bytes().chunks(size).map(<[u8]>::to_vec).collect())
}

/// Follows `trail`, read `size` bytes at a time, to the error it must end with.
fn refused(trail: &str, size: usize, out: &mut Vec<u8>) -> String {
    let stop = AtomicBool::new(false);
    let result = follow(&mut pieces(trail, size), RUN, &options(), &stop, out);
    result.unwrap_err().to_string()
}

fn options() -> Options {
    Options {
        quiet_after: Duration::from_secs(3600),
        quiet_every: Duration::from_secs(3600),
        status_line: false,
    }
}

#[test]
fn a_sealed_trail_in_pieces_of_any_size_reads_whole_and_ends_at_its_seal() {
    let mut seen = Vec::new();
    for size in [1, 7, 300, GOLDEN.len()] {
        let mut out = Vec::new();
        let end = follow(
            &mut pieces(GOLDEN, size),
            RUN,
            &options(),
            &AtomicBool::new(false),
            &mut out,
        );
        assert_eq!(end.unwrap(), End::Sealed);
        seen.push(String::from_utf8(out).unwrap());
    }
    assert!(
        seen.windows(2).all(|w| w[0] == w[1]),
        "the same whatever the pieces"
    );
    let text = &seen[0];
    for expected in [
        "Local service outage drill (local-drill) · drill · RTO 1m",
        "[1/",
        ": started on local",
        "decision: ",
        "verdict: PASS",
    ] {
        assert!(text.contains(expected), "`{expected}` in:\n{text}");
    }
    assert!(!text.contains('\x1b'), "{text}");
}

#[test]
fn a_line_not_ended_yet_is_not_shown_and_ctrl_c_ends_the_watch() {
    let cut = GOLDEN.find("\"event\":\"run finished\"").unwrap();
    let mut out = Vec::new();
    let stop = AtomicBool::new(false);
    let mut source = Script([GOLDEN.as_bytes()[..cut].to_vec()].into());
    // One idle round with the half seal pending, then Ctrl-C.
    let mut stopping = StopAfter {
        inner: &mut source,
        calls: 2,
        stop: &stop,
    };
    let end = follow(&mut stopping, RUN, &options(), &stop, &mut out).unwrap();
    assert_eq!(end, End::Interrupted);
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("walk ended"), "{text}");
    assert!(!text.contains("sealed by"), "{text}");
}

struct StopAfter<'a> {
    inner: &'a mut dyn Source,
    calls: usize,
    stop: &'a AtomicBool,
}

impl Source for StopAfter<'_> {
    fn next(&mut self, wait: Duration) -> Result<Next, Error> {
        self.calls -= 1;
        if self.calls == 0 {
            self.stop.store(true, Ordering::SeqCst);
        }
        self.inner.next(wait)
    }
    fn name(&self) -> String {
        self.inner.name()
    }
}

#[test]
fn a_tampered_line_stops_the_watch_naming_it_after_the_lines_before_it() {
    let tampered = GOLDEN.replacen("\"outcome\":\"ok\"", "\"outcome\":\"OK\"", 1);
    let line = tampered.lines().position(|l| l.contains("\"OK\"")).unwrap() + 1;
    let mut out = Vec::new();
    let err = refused(&tampered, 64, &mut out);
    assert!(
        err.contains(&format!("tampered with at seq {} (line {line})", line - 1)),
        "{err}"
    );
    assert!(err.contains("hash does not match"), "{err}");
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("started on local"), "{text}");
    assert!(!text.contains(": OK"), "the bad line is not shown: {text}");
}

#[test]
fn a_run_quiet_for_hours_is_said_so_at_once_and_once_per_stretch() {
    let cut = GOLDEN.find("{\"v\":1,\"seq\":3,").unwrap();
    let mut source = Script([GOLDEN.as_bytes()[..cut].to_vec()].into());
    let stop = AtomicBool::new(false);
    let mut stopping = StopAfter {
        inner: &mut source,
        calls: 4,
        stop: &stop,
    };
    let options = Options {
        quiet_after: Duration::from_secs(30),
        quiet_every: Duration::from_secs(60),
        status_line: false,
    };
    let mut out = Vec::new();
    follow(&mut stopping, RUN, &options, &stop, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text.matches("no event for ").count(), 1, "{text}");
    let secs: u64 = text
        .split("no event for ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        secs > 3600,
        "counted from the last line's time, not the watch's start: {text}"
    );
    assert!(
        text.contains("(RTO 1m exceeded by "),
        "the clock, against the RTO: {text}"
    );
}

#[test]
fn a_line_after_the_seal_is_tampering_even_when_the_seal_ends_the_watch() {
    let first = GOLDEN.lines().next().unwrap();
    let after = format!("{GOLDEN}{first}\n");
    let line = GOLDEN.lines().count() + 1;
    let err = refused(&after, after.len(), &mut Vec::new());
    assert!(
        err.contains(&format!("(line {line}): a line follows the seal")),
        "{err}"
    );
}

#[test]
fn a_seal_without_its_newline_still_seals_and_a_bad_one_is_waited_on_as_a_torn_line() {
    let whole = GOLDEN.strip_suffix('\n').unwrap();
    let mut out = Vec::new();
    let end = follow(
        &mut pieces(whole, 4096),
        RUN,
        &options(),
        &AtomicBool::new(false),
        &mut out,
    );
    assert_eq!(end.unwrap(), End::Sealed);

    // A seal that does not check, without its newline: a write cut short (as verify has it).
    let bad = whole.replacen("\"events\":", "\"events\":1", 1);
    let stop = AtomicBool::new(false);
    let mut source = pieces(&bad, bad.len());
    let mut stopping = StopAfter {
        inner: &mut source,
        calls: 3,
        stop: &stop,
    };
    let mut out = Vec::new();
    let end = follow(&mut stopping, RUN, &options(), &stop, &mut out).unwrap();
    assert_eq!(end, End::Interrupted);
    assert!(!String::from_utf8(out).unwrap().contains("sealed by"));
}
