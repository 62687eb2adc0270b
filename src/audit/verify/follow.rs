//! The chain checked one whole line at a time as a trail grows (`runbook watch`): the same
//! checks as `verify`, without reading the file again for each new line.

use super::{Broken, check_line, check_seal};
use crate::audit::GENESIS;

/// Where a growing trail stands: the hash its next line must name, and whether it is sealed.
#[derive(Clone)]
pub(crate) struct ChainFollower {
    run: String,
    file_name: String,
    prev: String,
    next_seq: u64,
    lines: usize,
    sealed_at: Option<usize>,
}

/// The first line where the chain does not hold: the seq to name, its 1-based line, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChainBreak {
    pub seq: u64,
    pub line: usize,
    pub reason: String,
}

impl ChainFollower {
    /// For the trail of run `run` (every line must name it, as `verify` requires).
    pub(crate) fn new(run: &str) -> ChainFollower {
        ChainFollower {
            run: run.to_string(),
            file_name: format!("{run}.jsonl"),
            prev: GENESIS.to_string(),
            next_seq: 0,
            lines: 0,
            sealed_at: None,
        }
    }

    /// Checks the next whole line (without its newline).
    pub(crate) fn check(&mut self, line: &[u8]) -> Result<(), ChainBreak> {
        self.lines += 1;
        let at = |Broken { seq, reason }: Broken| ChainBreak {
            seq,
            line: self.lines,
            reason,
        };
        if let Some(seal_line) = self.sealed_at {
            return Err(at(Broken {
                seq: self.next_seq,
                reason: format!("a line follows the seal (`run finished` on line {seal_line})"),
            }));
        }
        let checked = check_line(
            line,
            self.next_seq,
            &self.prev,
            (&self.run, &self.file_name),
            false,
        )
        .map_err(at)?;
        if checked.event == "run finished" {
            let broken = checked
                .value
                .as_ref()
                .and_then(|seal| check_seal(seal, self.next_seq, &self.prev));
            if let Some(reason) = broken {
                return Err(at(Broken {
                    seq: self.next_seq,
                    reason,
                }));
            }
            self.sealed_at = Some(self.lines);
        }
        self.prev = checked.hash;
        self.next_seq += 1;
        Ok(())
    }

    /// Whether the seal has been checked.
    pub(crate) fn sealed(&self) -> bool {
        self.sealed_at.is_some()
    }
}
