//! Pre-flight: the runbook and every runbook it calls, validated; each role bound to a host;
//! every input given a value; and, unattended, the list of steps that would need a human.
//! Everything here happens before anything runs, so every problem exits 2.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

use indexmap::IndexMap;

use crate::book::catalog;
use crate::book::parse::Source;
use crate::book::runbook::{Runbook, Step, StepKind};
use crate::cli::config::Config;
use crate::diagnostic::{did_you_mean, plural};
use crate::error::{Error, exit};
use crate::inventory::{Binding, Inventory};
use crate::prompt::Operator;
use crate::vars::Vars;

pub(crate) mod answers;
pub(crate) mod dry_run;
pub(crate) mod given;
pub(crate) mod preflight;

/// A runbook file, read, parsed and validated.
#[derive(Debug, Clone)]
pub(crate) struct Loaded {
    pub runbook: Runbook,
    pub source: Source,
    pub path: PathBuf,
}

#[derive(Debug)]
pub(crate) struct Plan {
    pub main: Loaded,
    /// Every runbook reachable through `call`, by id.
    pub called: HashMap<String, Loaded>,
    /// (runbook id, role) → host label.
    hosts: HashMap<(String, String), String>,
    /// host label → where it is.
    pub bindings: IndexMap<String, Binding>,
    /// role → host label, for the run-started event (main runbook only).
    pub targets: IndexMap<String, String>,
    /// fleet label (a group, or `a,b,c`) → its hosts' labels, in order (design §13).
    pub fleets: IndexMap<String, Vec<String>>,
    /// Hosts the inventory marks `shell: false`: no shell is opened on them (design §17).
    pub no_shell: BTreeSet<String>,
}

/// Loads and validates one file; prints its diagnostics when it has errors.
fn load(path: PathBuf, catalog_ids: &BTreeSet<String>) -> Result<Loaded, Error> {
    let (source, runbook, diagnostics) = crate::book::validate::check_file(&path, Some(catalog_ids));
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    if errors > 0 || runbook.is_none() {
        for d in &diagnostics {
            crate::stderr::ewrite!("{}", d.render(source.as_ref().map(|s| s.text.as_str())));
        }
        crate::stderr::ewriteln!(
            "runbook: error: {} does not validate ({}): nothing was run",
            path.display(),
            plural(errors, "error")
        );
        return Err(Error::Exit(exit::USAGE));
    }
    let (Some(source), Some(runbook)) = (source, runbook) else {
        return Err(Error::Exit(exit::USAGE));
    };
    Ok(Loaded {
        runbook,
        source,
        path,
    })
}

/// The roles a runbook's steps (and cleanup) act on, and its guards check.
fn roles_used(runbook: &Runbook) -> Vec<String> {
    let mut roles: Vec<String> = Vec::new();
    for step in runbook.steps.iter().chain(&runbook.cleanup) {
        if matches!(step.kind(), Some(StepKind::Run(_))) {
            let role = runbook.step_target(step).to_string();
            if !roles.contains(&role) {
                roles.push(role);
            }
        }
    }
    // A guard's host is bound, and reached before anything runs, as a step's is.
    for guard in &runbook.guards {
        let role = runbook.guard_target(guard).to_string();
        if !roles.contains(&role) {
            roles.push(role);
        }
    }
    roles
}

impl Plan {
    /// Loads the runbook named on the command line and everything it calls, and binds roles.
    pub(crate) fn load(
        config: &Config,
        spec: &str,
        target_flags: &[crate::cli::Pair],
        inventory: &Inventory,
    ) -> Result<Plan, Error> {
        let index = catalog::index(&config.catalog);
        let path = catalog::resolve_in(&index, &config.catalog, spec)?;
        let ids: BTreeSet<String> = index.keys().cloned().collect();
        let main = load(path, &ids)?;
        let mut called = HashMap::new();
        let mut queue: Vec<String> = calls_of(&main.runbook);
        while let Some(id) = queue.pop() {
            if called.contains_key(&id) || id == main.runbook.id() {
                continue;
            }
            let path = index
                .get(&id)
                .cloned()
                .ok_or_else(|| Error::usage(format!("runbook `{id}` is called but is not in the catalog")))?;
            let loaded = load(path, &ids)?;
            queue.extend(calls_of(&loaded.runbook));
            called.insert(id, loaded);
        }

        let mut flags: IndexMap<String, String> = IndexMap::new();
        for crate::cli::Pair {
            name: role,
            value: dest,
        } in target_flags
        {
            let flag = format!("{role}={dest}");
            let role = role.trim();
            if !main.runbook.targets.contains_key(role) && role != "local" {
                let hint = did_you_mean(role, main.runbook.targets.keys().map(String::as_str))
                    .map(|h| format!(" ({h})"))
                    .unwrap_or_default();
                let known = crate::diagnostic::ticked(main.runbook.targets.keys());
                return Err(Error::usage(format!(
                    "--target `{flag}`: `{}` has no role `{role}`{hint}; its roles: {}",
                    main.runbook.id(),
                    if known.is_empty() {
                        "none (it runs locally)".to_string()
                    } else {
                        known
                    }
                )));
            }
            flags.insert(role.to_string(), dest.to_string());
        }

        let mut plan = Plan::unbound(main, called);
        let runbooks: Vec<Runbook> = std::iter::once(plan.main.runbook.clone())
            .chain(plan.called.values().map(|l| l.runbook.clone()))
            .collect();
        for runbook in &runbooks {
            let is_main = runbook.id() == plan.main.runbook.id();
            for role in roles_used(runbook) {
                let dest = if role == "local" {
                    "local".to_string()
                } else if let Some(dest) = flags.get(&role) {
                    dest.clone()
                } else if let Some(default) = runbook.targets.get(&role).and_then(|t| t.value.default.clone())
                {
                    default
                } else {
                    return Err(Error::usage(format!(
                        "role `{role}` of `{}` is not bound to a host: pass --target {role}=HOST (an inventory host, user@host:port, an ~/.ssh/config alias, or local)",
                        runbook.id()
                    )));
                };
                let members = inventory.members(&role, &dest)?;
                let label = if members.len() > 1 {
                    let mut labels = Vec::new();
                    for member in &members {
                        let binding = inventory.bind(&role, member)?;
                        labels.push(binding.label());
                        plan.bindings.entry(binding.label()).or_insert(binding);
                    }
                    let label = dest.trim().to_string();
                    plan.fleets.insert(label.clone(), labels);
                    label
                } else {
                    let binding =
                        inventory.bind(&role, members.first().map(String::as_str).unwrap_or(&dest))?;
                    let label = binding.label();
                    plan.bindings.entry(label.clone()).or_insert(binding);
                    label
                };
                plan.hosts
                    .insert((runbook.id().to_string(), role.clone()), label.clone());
                if is_main {
                    plan.targets.insert(role, label);
                }
            }
        }
        plan.no_shell = plan
            .bindings
            .keys()
            .filter(|label| {
                inventory
                    .hosts
                    .get(*label)
                    .is_some_and(|h| h.shell == Some(false))
            })
            .cloned()
            .collect();
        Ok(plan)
    }

    /// A plan whose every role acts on `local`, for a walk over the stub transport
    /// (`runbook test`): nothing is connected, so nothing needs binding.
    pub(crate) fn unbound(main: Loaded, called: HashMap<String, Loaded>) -> Plan {
        Plan {
            main,
            called,
            hosts: HashMap::new(),
            bindings: IndexMap::new(),
            targets: IndexMap::new(),
            fleets: IndexMap::new(),
            no_shell: BTreeSet::new(),
        }
    }

    /// Whether a step of the run needs approvals (design §15): its `approve:`, or a confirmed
    /// step on a host the inventory marks `approve: destructive`.
    pub(crate) fn needs_approval(&self) -> bool {
        std::iter::once(&self.main)
            .chain(self.called.values())
            .any(|loaded| {
                let runbook = &loaded.runbook;
                runbook.steps.iter().chain(&runbook.cleanup).any(|step| {
                    step.approve.is_some()
                        || (step.confirmation().is_some()
                            && self
                                .members(&self.host(runbook.id(), runbook.step_target(step)))
                                .iter()
                                .any(|h| {
                                    matches!(self.bindings.get(h), Some(Binding::Ssh { approve: true, .. }))
                                }))
                })
            })
    }

    /// The hosts behind a label: a fleet's members, else the one host.
    pub(crate) fn members(&self, label: &str) -> Vec<String> {
        self.fleets
            .get(label)
            .cloned()
            .unwrap_or_else(|| vec![label.to_string()])
    }

    /// `capture` on a fleet step needs `capture_from` (design §13): which host's stdout would
    /// it be? Checked before anything runs.
    pub(crate) fn check_fleet_captures(&self) -> Result<(), Error> {
        let runbooks = std::iter::once(&self.main).chain(self.called.values());
        let mut problems = Vec::new();
        for loaded in runbooks {
            let runbook = &loaded.runbook;
            for step in runbook.steps.iter().chain(&runbook.cleanup) {
                let label = self.host(runbook.id(), runbook.step_target(step));
                let Some(members) = self.fleets.get(&label) else {
                    continue;
                };
                let at = |span: &serde_saphyr::Location| {
                    format!("{}:{}:{}", loaded.path.display(), span.line(), span.column())
                };
                match (&step.capture, &step.capture_from) {
                    (Some(capture), None) => problems.push(format!(
                        "{}: step `{}` captures `{}` but its role is bound to {} hosts ({label}): say whose output with `capture_from: HOST` or `capture_from: first`",
                        at(&capture.referenced),
                        step.id(),
                        capture.value,
                        members.len()
                    )),
                    (_, Some(from)) if from.value != "first" && !members.contains(&from.value) => {
                        let hint = did_you_mean(&from.value, members.iter().map(String::as_str))
                            .map(|h| format!(" ({h})"))
                            .unwrap_or_default();
                        problems.push(format!(
                            "{}: step `{}`: capture_from `{}` is not one of the hosts of {label}{hint}: {}",
                            at(&from.referenced),
                            step.id(),
                            from.value,
                            members.join(", ")
                        ))
                    }
                    _ => {}
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Error::usage(format!(
                "{}\n  nothing was run",
                problems.join("\n")
            )))
        }
    }

    /// The host label a role of a runbook is bound to.
    pub(crate) fn host(&self, runbook: &str, role: &str) -> String {
        self.hosts
            .get(&(runbook.to_string(), role.to_string()))
            .cloned()
            .unwrap_or_else(|| "local".to_string())
    }

    /// The main runbook's inputs: `--set-from`, `--set`, the input's `from:`, its default,
    /// else asked (an error unattended), all before anything runs (`plan::given`).
    pub(crate) fn inputs(
        &self,
        sets: &[crate::cli::Pair],
        froms: &[crate::cli::Pair],
        operator: &dyn Operator,
    ) -> Result<Vars, Error> {
        let runbook = &self.main.runbook;
        let given = crate::plan::given::Given::parse(sets, froms, runbook)?;
        let mut values = HashMap::new();
        let mut missing = Vec::new();
        for (name, input) in given.order(runbook.inputs.iter().map(|(n, i)| (n, &i.value))) {
            match given
                .value(name, input)?
                .map_or_else(|| operator.ask_input(name, input), |v| Ok(Some(v)))?
            {
                Some(value) => {
                    values.insert(name.as_str(), value);
                }
                None => missing.push(name.clone()),
            }
        }
        // In the runbook's order again, as every listing shows them.
        let mut vars = Vars::default();
        for (name, input) in &runbook.inputs {
            if let Some(value) = values.remove(name.as_str()) {
                vars.set(name, value, input.value.secret);
            }
        }
        if !missing.is_empty() {
            return Err(missing_inputs(&missing));
        }
        Ok(vars)
    }

    /// The main runbook's inputs for `--dry-run`: the values `--set` and defaults give, and for
    /// the others where they would come from, in words (`<from cmd:pass show db: read when
    /// the run starts>`, `<secret: asked when the run starts, not in a dry run>`). No source is
    /// read and nobody is asked, so a dry run needs no terminal and runs no `cmd:`. Unattended
    /// (`--yes`), an input nothing gives is the same error as for the run itself.
    pub(crate) fn planned_inputs(
        &self,
        sets: &[crate::cli::Pair],
        froms: &[crate::cli::Pair],
        unattended: bool,
    ) -> Result<Vars, Error> {
        use crate::plan::given::Planned;
        let runbook = &self.main.runbook;
        let given = crate::plan::given::Given::parse(sets, froms, runbook)?;
        let mut vars = Vars::default();
        let mut missing = Vec::new();
        for (name, input) in &runbook.inputs {
            let secret = input.value.secret;
            match given.planned(name, &input.value)? {
                Planned::Value(value) => vars.set(name, value, secret),
                Planned::Source(source) => {
                    vars.set(name, format!("<from {source}: read when the run starts>"), false)
                }
                Planned::Asked if unattended => missing.push(name.clone()),
                Planned::Asked if secret => {
                    vars.set(
                        name,
                        "<secret: asked when the run starts, not in a dry run>",
                        false,
                    );
                }
                Planned::Asked => vars.set(name, "<asked when the run starts>", false),
            }
        }
        if !missing.is_empty() {
            return Err(missing_inputs(&missing));
        }
        Ok(vars)
    }

    /// Where a host label points, for the plan: `local (this machine)`, `prod-db
    /// (deploy@db-1.example.com, env prod)`, or the SSH destination as given.
    pub(crate) fn describe_host(&self, label: &str) -> String {
        match self.bindings.get(label) {
            None | Some(Binding::Local) => "local (this machine)".to_string(),
            Some(Binding::Ssh { name, dest, env, .. }) => {
                let mut facts = Vec::new();
                if dest != name {
                    facts.push(dest.clone());
                }
                facts.push(match env {
                    Some(env) => format!("ssh, env {env}"),
                    None => "ssh".to_string(),
                });
                format!("{name} ({})", facts.join(", "))
            }
        }
    }

    /// The variables of a sub-run: the called runbook's inputs from `with` (interpolated with
    /// the caller's values), else their defaults. Secrets stay secret.
    pub(crate) fn sub_run_vars(&self, called: &Runbook, step: &Step, parent: &Vars) -> Result<Vars, Error> {
        let mut vars = Vars::default();
        for (name, input) in &called.inputs {
            let from_with = step.with.get(name).map(|text| {
                let secret = text_mentions_secret(text, parent);
                (parent.interpolate_clear(text), secret)
            });
            match from_with.or_else(|| input.value.default.clone().map(|d| (d, false))) {
                Some((value, secret)) => vars.set(name, value, secret || input.value.secret),
                None => {
                    return Err(Error::runtime(format!(
                        "step `{}` calls `{}` without a value for its input `{name}`: add it to `with`",
                        step.id(),
                        called.id()
                    )));
                }
            }
        }
        for builtin in ["run_id", "operator", "mode"] {
            if let Some(v) = parent.get(builtin) {
                vars.set(builtin, v.text.clone(), false);
            }
        }
        Ok(vars)
    }
}

/// Inputs nothing gives, unattended: what to pass.
fn missing_inputs(missing: &[String]) -> Error {
    let flags = missing
        .iter()
        .map(|m| format!("--set-from {m}=SOURCE (or --set {m}=...)"))
        .collect::<Vec<_>>()
        .join(" ");
    Error::usage(format!(
        "inputs without a value: {} — pass {flags} (nothing was run)",
        missing.join(", ")
    ))
}

/// The runbooks `runbook`'s steps call, by id, in order.
pub(crate) fn calls_of(runbook: &Runbook) -> Vec<String> {
    runbook
        .steps
        .iter()
        .filter_map(|s| s.call.as_ref().map(|c| c.value.clone()))
        .collect()
}

/// A `with` value that interpolates a secret is secret too.
fn text_mentions_secret(text: &str, vars: &Vars) -> bool {
    vars.interpolate(text) != vars.interpolate_clear(text)
}

/// Indices of the steps reachable from `start` along every edge (success, failure, options).
pub(crate) fn reachable(runbook: &Runbook, start: usize) -> Vec<usize> {
    reachable_until(runbook, start, &|_| false)
}

/// The same, not going past the steps where `stop` holds (a hand-off answered in advance:
/// the walk of this process ends there).
pub(crate) fn reachable_until(runbook: &Runbook, start: usize, stop: &dyn Fn(&Step) -> bool) -> Vec<usize> {
    let mut seen = vec![false; runbook.steps.len()];
    let mut stack = vec![start];
    let mut order = Vec::new();
    while let Some(i) = stack.pop() {
        if i >= seen.len() || seen[i] {
            continue;
        }
        seen[i] = true;
        order.push(i);
        let step = &runbook.steps[i];
        if stop(step) {
            continue;
        }
        let mut targets: Vec<&str> = Vec::new();
        match step.kind() {
            Some(StepKind::End(_)) | None => {}
            Some(StepKind::Choose(options)) => targets.extend(options.iter().map(|o| o.goto.value.as_str())),
            Some(_) => {
                match &step.next {
                    Some(n) => targets.push(&n.value),
                    None => {
                        if let Some(s) = runbook.steps.get(i + 1) {
                            targets.push(s.id());
                        }
                    }
                }
                if let Some(f) = &step.on_failure {
                    targets.push(&f.value);
                }
            }
        }
        stack.extend(targets.into_iter().filter_map(|t| runbook.step_index(t)));
    }
    order.sort_unstable();
    order
}
