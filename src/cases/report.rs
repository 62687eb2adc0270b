//! What `runbook test` prints: a line per case (and why a failing one failed), then the
//! coverage; or a JUnit XML report for CI, written by `quick-junit`.

use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use super::check::Prepared;
use super::coverage::Unreached;
use super::judge::Verdict;
use crate::secrets::escape::value as esc;

/// One case as run: what it is, what it did, how long the walk took for real.
pub(crate) struct Ran<'a> {
    pub case: &'a Prepared,
    pub verdict: &'a Verdict,
    pub wall: Duration,
}

fn stubbed(v: &Verdict) -> String {
    crate::duration::format(v.took)
}

/// The text report: one line per case, the failures' reasons under them, a summary.
pub(crate) fn text(ran: &[Ran<'_>], wall: Duration) -> String {
    let mut out = String::new();
    for r in ran {
        let rto = r.case.main.runbook.rto.get().unwrap_or_default();
        let mark = if r.verdict.failures.is_empty() {
            "PASS"
        } else {
            "FAIL"
        };
        out.push_str(&format!(
            "{mark}  {}: {}  ({}; {} steps, ended {}, {} of {} RTO)\n",
            r.case.main.runbook.id(),
            esc(&r.case.name),
            r.case.file,
            r.verdict.path.len(),
            r.verdict.outcome,
            stubbed(r.verdict),
            crate::duration::format(rto)
        ));
        for f in &r.verdict.failures {
            out.push_str(&format!("      {}\n", esc(f)));
        }
    }
    let failed = ran.iter().filter(|r| !r.verdict.failures.is_empty()).count();
    out.push_str(&format!(
        "{}: {} passed, {failed} failed ({:.2}s)\n",
        crate::diagnostic::plural(ran.len(), "case"),
        ran.len() - failed,
        wall.as_secs_f64()
    ));
    out
}

/// The coverage list, or a line saying everything is reached.
pub(crate) fn coverage(unreached: &[Unreached]) -> String {
    if unreached.is_empty() {
        return "coverage: every step and option of the runbooks under test is reached\n".into();
    }
    let what = if unreached.len() == 1 {
        "1 step or option".to_string()
    } else {
        format!("{} steps or options", unreached.len())
    };
    let mut out = format!("coverage: {what} not reached by any case:\n");
    for u in unreached {
        out.push_str(&format!("  {}\n", esc(&u.line())));
    }
    out
}

/// The JUnit XML report: a test suite per runbook, a test case per case file.
pub(crate) fn junit(ran: &[Ran<'_>], wall: Duration) -> Result<String, String> {
    let mut report = Report::new("runbook test");
    report.set_time(wall);
    let mut suites: Vec<TestSuite> = Vec::new();
    for r in ran {
        let id = r.case.main.runbook.id();
        let status = match r.verdict.failures.first() {
            None => TestCaseStatus::success(),
            Some(first) => {
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                status.set_message(first.as_str());
                status.set_description(r.verdict.failures.join("\n"));
                status
            }
        };
        let mut case = TestCase::new(r.case.name.as_str(), status);
        case.set_classname(id);
        case.add_property(Property::new("file", r.case.file.as_str()));
        case.set_time(r.wall);
        case.set_system_out(format!(
            "path: {}\noutcome: {}\nstubbed time: {}\n",
            r.verdict.path.join(" -> "),
            r.verdict.outcome,
            stubbed(r.verdict)
        ));
        match suites.iter_mut().find(|s| s.name.as_str() == id) {
            Some(suite) => {
                suite.add_test_case(case);
            }
            None => {
                let mut suite = TestSuite::new(id);
                suite.add_test_case(case);
                suites.push(suite);
            }
        }
    }
    report.add_test_suites(suites);
    report
        .to_string()
        .map_err(|e| format!("cannot write the JUnit report: {e}"))
}
