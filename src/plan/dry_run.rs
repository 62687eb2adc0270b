//! `--dry-run`: the plan of a run (steps, branches, commands, hosts, variables), printed and
//! not executed.

use crate::book::runbook::{Confirm, Runbook, Step, StepKind};
use crate::plan::{Plan, reachable};
use crate::vars::Vars;

pub(crate) fn render(plan: &Plan, vars: &Vars, start_at: Option<&str>) -> String {
    let runbook = &plan.main.runbook;
    let mut out = format!(
        "Plan for {} ({}) · RTO {} · dry run, nothing is executed\n",
        runbook.title,
        runbook.id(),
        runbook.rto.0.value
    );
    for (role, host) in &plan.targets {
        out.push_str(&format!("  target {role} → {}\n", plan.describe_host(host)));
    }
    for (name, value) in vars.masked() {
        out.push_str(&format!("  var {name}={value}\n"));
    }
    steps(plan, runbook, "", start_at, vars, &mut out);
    for called in plan.called.values() {
        out.push_str(&format!(
            "\nCalled runbook {} ({})\n",
            called.runbook.title,
            called.runbook.id()
        ));
        steps(plan, &called.runbook, "  ", None, vars, &mut out);
    }
    out
}

/// Where a step acts: `db → prod-db (deploy@db-1, ssh, env prod)`, or `local (this machine)`.
fn target_of(plan: &Plan, runbook: &Runbook, step: &Step) -> String {
    let role = runbook.step_target(step);
    let host = plan.describe_host(&plan.host(runbook.id(), role));
    if role == "local" {
        host
    } else {
        format!("{role} → {host}")
    }
}

fn steps(
    plan: &Plan,
    runbook: &Runbook,
    indent: &str,
    start_at: Option<&str>,
    vars: &Vars,
    out: &mut String,
) {
    let start = start_at.and_then(|s| runbook.step_index(s)).unwrap_or(0);
    let reach = reachable(runbook, start);
    for (i, step) in runbook.steps.iter().enumerate() {
        let skipped = if reach.contains(&i) { "" } else { "  (not reached)" };
        let on = target_of(plan, runbook, step);
        out.push_str(&format!(
            "\n{indent}[{}/{}] {} — {}{skipped}\n",
            i + 1,
            runbook.steps.len(),
            step.id(),
            vars.interpolate(&step.title)
        ));
        match step.kind() {
            Some(StepKind::Run(cmd)) => {
                out.push_str(&format!("{indent}    run on {on}:\n"));
                for line in cmd.lines() {
                    out.push_str(&format!("{indent}      {line}\n"));
                }
            }
            Some(StepKind::Manual(text)) => out.push_str(&format!(
                "{indent}    manual: {}\n",
                vars.interpolate(text).trim_end()
            )),
            Some(StepKind::Call(id)) => out.push_str(&format!("{indent}    call runbook `{id}`\n")),
            Some(StepKind::Choose(options)) => {
                for o in options {
                    let when = match &o.when {
                        Some(w) => match (&w.equals, &w.matches) {
                            (Some(e), _) => format!(" (when {} = {e:?})", w.var.value),
                            (None, Some(m)) => format!(" (when {} matches /{}/)", w.var.value, m.value),
                            _ => String::new(),
                        },
                        None => " (fallback)".to_string(),
                    };
                    out.push_str(&format!(
                        "{indent}    option \"{}\" → {}{when}\n",
                        o.label, o.goto.value
                    ));
                }
            }
            Some(StepKind::End(outcome)) => out.push_str(&format!("{indent}    end: {}\n", outcome.as_str())),
            None => {}
        }
        match step.confirmation() {
            Some(Confirm::Phrase(p)) => out.push_str(&format!(
                "{indent}    confirm by typing: {}\n",
                vars.interpolate(p)
            )),
            Some(Confirm::YesNo(_)) => out.push_str(&format!("{indent}    confirm: yes/no\n")),
            None => {}
        }
        if let Some(t) = &step.timeout {
            out.push_str(&format!("{indent}    timeout {}\n", t.0.value));
        }
        if let Some(n) = &step.next {
            out.push_str(&format!("{indent}    next → {}\n", n.value));
        }
        if let Some(f) = &step.on_failure {
            out.push_str(&format!("{indent}    on failure → {}\n", f.value));
        }
    }
    for step in &runbook.cleanup {
        out.push_str(&format!(
            "\n{indent}cleanup {} — {}\n",
            step.id(),
            vars.interpolate(&step.title)
        ));
        if let Some(r) = &step.run {
            out.push_str(&format!(
                "{indent}    run on {}:\n",
                target_of(plan, runbook, step)
            ));
            for line in r.value.lines() {
                out.push_str(&format!("{indent}      {line}\n"));
            }
        }
    }
}
