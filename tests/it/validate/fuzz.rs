//! Random bytes and random mutations of valid runbooks, parsed and validated in-process for
//! a bounded time: whatever the input, validation returns diagnostics, it never panics.
//! A hand-rolled xorshift keeps it dependency-free and reproducible (the seed is printed).

use std::time::{Duration, Instant};

use runbook::testing::parse::Source;

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Pieces of YAML and runbook syntax that reach deeper than random bytes do.
const TOKENS: &[&str] = &[
    ":",
    "- ",
    "{",
    "}",
    "[",
    "]",
    "&a ",
    "*a",
    "\"",
    "'",
    "\n  ",
    "#",
    "|\n",
    "next: ",
    "goto: ",
    "{{ x }}",
    "{{",
    "rto: 0s",
    "90",
    "(",
    "\u{e9}",
    "\t",
    "end: resolved",
    "choose: []",
    "\0",
];

fn mutate(rng: &mut XorShift, input: &[u8]) -> Vec<u8> {
    let mut bytes = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = bytes.len();
        match rng.below(7) {
            0 if len > 0 => {
                let i = rng.below(len);
                bytes[i] ^= 1 << rng.below(8);
            }
            1 => bytes.truncate(rng.below(len + 1)),
            2 | 3 => {
                let mut lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
                let i = rng.below(lines.len());
                if rng.below(2) == 0 {
                    lines.remove(i);
                } else {
                    let line = lines[i];
                    lines.insert(i, line);
                }
                bytes = lines.join(&b'\n');
            }
            4 | 5 => {
                let token = TOKENS[rng.below(TOKENS.len())].as_bytes();
                let at = rng.below(len + 1);
                bytes.splice(at..at, token.iter().copied());
            }
            _ => {
                let n = rng.below(64);
                bytes = (0..n).map(|_| rng.next() as u8).collect();
            }
        }
    }
    bytes
}

fn check(bytes: Vec<u8>) {
    if let Ok(source) = Source::from_bytes("fuzz.yaml", bytes)
        && let Ok(runbook) = runbook::testing::validate::parse(&source)
    {
        let catalog = ["rollback".to_string()].into_iter().collect();
        for d in runbook::testing::validate::validate(&source, &runbook, Some(&catalog)) {
            let _ = d.render(Some(&source.text));
        }
    }
}

#[test]
fn random_inputs_never_panic() {
    let seeds: Vec<Vec<u8>> = [
        include_str!("../../data/design-example.yaml"),
        include_str!("../../data/broken/loop-no-exit.yaml"),
        include_str!("../../data/broken/dangling-next.yaml"),
        include_str!("../../data/broken/bad-regex.yaml"),
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64)
        | 1;
    let mut rng = XorShift(seed);
    let start = Instant::now();
    let mut runs = 0;
    while start.elapsed() < Duration::from_secs(5) {
        let pick = rng.below(seeds.len());
        let input = mutate(&mut rng, &seeds[pick]);
        let shown = String::from_utf8_lossy(&input).into_owned();
        if std::panic::catch_unwind(|| check(input)).is_err() {
            panic!("validation panicked (seed {seed}, after {runs} runs) on:\n{shown}");
        }
        runs += 1;
    }
    assert!(runs > 100, "only {runs} inputs in 5 s");
}
