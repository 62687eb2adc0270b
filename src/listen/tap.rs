//! A listener that keeps what a test case judges (`runbook test`, design §21): the steps the
//! walk presented (and whether in the cleanup), how each ended, and the decisions with the
//! variables they were judged on. Only the few facts a verdict needs are copied, not every event.

use indexmap::IndexMap;

use crate::events::{Event, GuardChange, StepOutcome};

/// One thing the walk did, in order.
#[derive(Debug, Clone)]
pub(crate) enum Seen {
    /// A step was presented (entered). `cleanup`: after the walk ended.
    Entered { step: String, cleanup: bool },
    /// A step ended (a run step's attempt, a manual step's report, a sub-run).
    Finished {
        step: String,
        outcome: StepOutcome,
        exit: Option<i32>,
        attempt: u32,
        reason: Option<String>,
    },
    /// A decision took an option; `vars` as the decision saw them (secrets masked).
    Decided {
        step: String,
        label: String,
        goto: String,
        vars: IndexMap<String, String>,
    },
    /// A guard tripped (a rehearsal's are stubbed): the walk diverts to `goto`, or offers to.
    Tripped {
        guard: String,
        failures: u32,
        reason: Option<String>,
        goto: String,
    },
}

#[derive(Debug, Default)]
pub(crate) struct Tap {
    pub seen: Vec<Seen>,
    cleanup: bool,
    /// The variables of the decision step being presented.
    deciding: Option<IndexMap<String, String>>,
}

impl Tap {
    pub(crate) fn handle(&mut self, event: &Event) {
        match event {
            Event::StepPresented(p) => {
                if p.kind == "choose" {
                    self.deciding = Some(p.vars.masked());
                }
                self.seen.push(Seen::Entered {
                    step: p.step.clone(),
                    cleanup: self.cleanup,
                });
            }
            Event::StepFinished(f) => self.seen.push(Seen::Finished {
                step: f.step.clone(),
                outcome: f.outcome,
                exit: f.exit,
                attempt: f.attempt,
                reason: f.reason.clone(),
            }),
            Event::Decision { step, label, goto } => self.seen.push(Seen::Decided {
                step: step.clone(),
                label: label.clone(),
                goto: goto.clone(),
                vars: self.deciding.take().unwrap_or_default(),
            }),
            Event::Guard(g) if g.change == GuardChange::Tripped => self.seen.push(Seen::Tripped {
                guard: g.guard.clone(),
                failures: g.failures,
                reason: g.reason.clone(),
                goto: g.goto.clone(),
            }),
            // What follows is the cleanup.
            Event::WalkEnded { .. } => self.cleanup = true,
            _ => {}
        }
    }
}
