//! The step graph of a runbook and the pure graph functions validation, `show` and the
//! pre-flight of `run` need: who is reachable, who can still reach an `end`, which steps form a
//! loop, and the longest path by time target. Nodes are step indexes; edges are plain lists.
//!
//! Every function is iterative (no recursion): a hostile file with thousands of chained steps
//! must not overflow the stack.

use crate::book::runbook::{Runbook, Step, StepKind};

/// Successor lists, one per step of `runbook.steps` (cleanup steps are not part of the graph).
pub(crate) type Successors = Vec<Vec<usize>>;

/// The edges of design §2: success follows `next` or the next step in the list (`run`,
/// `manual`, `call`); failure follows `on_failure` when set (without it the operator is asked,
/// which adds no edge); a `choose` goes to each option's `goto`; an `end` goes nowhere.
/// References to unknown steps are left out (validation reports them). A step with no kind or
/// several is treated like a `run` step, so one mistake does not cascade into graph errors.
pub(crate) fn successors(runbook: &Runbook) -> Successors {
    // A map, not `step_index`: thousands of steps must not cost a quadratic scan.
    let mut ids = std::collections::HashMap::new();
    for (i, step) in runbook.steps.iter().enumerate() {
        ids.entry(step.id()).or_insert(i);
    }
    let index = |id: &str| ids.get(id).copied();
    // A guard can divert the walk from any step that is not an end (design §20).
    let guarded: Vec<usize> = runbook
        .guards
        .iter()
        .filter_map(|g| index(&g.goto.value))
        .collect();
    runbook
        .steps
        .iter()
        .enumerate()
        .map(|(i, step)| {
            let mut out = Vec::new();
            match step.kinds().first() {
                Some(StepKind::End(_)) => {}
                Some(StepKind::Choose(options)) => {
                    out.extend(options.iter().filter_map(|o| index(&o.goto.value)));
                }
                _ => {
                    out.extend(success(step, i, runbook.steps.len(), index));
                    out.extend(step.on_failure.as_ref().and_then(|f| index(&f.value)));
                }
            }
            if !matches!(step.kinds().first(), Some(StepKind::End(_))) {
                out.extend(&guarded);
            }
            out.sort_unstable();
            out.dedup();
            out
        })
        .collect()
}

fn success(step: &Step, i: usize, len: usize, index: impl Fn(&str) -> Option<usize>) -> Option<usize> {
    match &step.next {
        Some(next) => index(&next.value),
        None if i + 1 < len => Some(i + 1),
        None => None,
    }
}

/// The nodes reachable from `start` (itself included).
pub(crate) fn reachable(succ: &[Vec<usize>], start: usize) -> Vec<bool> {
    let mut seen = vec![false; succ.len()];
    if start >= succ.len() {
        return seen;
    }
    let mut stack = vec![start];
    seen[start] = true;
    while let Some(n) = stack.pop() {
        for &m in &succ[n] {
            if !seen[m] {
                seen[m] = true;
                stack.push(m);
            }
        }
    }
    seen
}

/// The nodes from which some node of `goal` can be reached (goal nodes included).
pub(crate) fn can_reach(succ: &[Vec<usize>], goal: &[bool]) -> Vec<bool> {
    let mut pred = vec![Vec::new(); succ.len()];
    for (n, out) in succ.iter().enumerate() {
        for &m in out {
            pred[m].push(n);
        }
    }
    let mut ok = goal.to_vec();
    let mut stack: Vec<usize> = (0..succ.len()).filter(|&n| goal[n]).collect();
    while let Some(n) = stack.pop() {
        for &p in &pred[n] {
            if !ok[p] {
                ok[p] = true;
                stack.push(p);
            }
        }
    }
    ok
}

/// Strongly connected components (Tarjan, iterative). Components come out in reverse
/// topological order: every edge leaving a component goes to one listed before it.
/// Members of a component are sorted by index.
pub(crate) struct Components {
    /// The component of each node.
    pub of: Vec<usize>,
    pub members: Vec<Vec<usize>>,
}

pub(crate) fn components(succ: &[Vec<usize>]) -> Components {
    let n = succ.len();
    const UNSEEN: usize = usize::MAX;
    let mut index = vec![UNSEEN; n];
    let mut low = vec![0; n];
    let mut on_stack = vec![false; n];
    let mut stack = Vec::new();
    let mut of = vec![0; n];
    let mut members: Vec<Vec<usize>> = Vec::new();
    let mut next_index = 0;
    // (node, position in its successor list) frames replace recursion.
    let mut frames: Vec<(usize, usize)> = Vec::new();
    for root in 0..n {
        if index[root] != UNSEEN {
            continue;
        }
        frames.push((root, 0));
        index[root] = next_index;
        low[root] = next_index;
        next_index += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&mut (v, ref mut at)) = frames.last_mut() {
            if let Some(&w) = succ[v].get(*at) {
                *at += 1;
                if index[w] == UNSEEN {
                    index[w] = next_index;
                    low[w] = next_index;
                    next_index += 1;
                    stack.push(w);
                    on_stack[w] = true;
                    frames.push((w, 0));
                } else if on_stack[w] {
                    low[v] = low[v].min(index[w]);
                }
                continue;
            }
            frames.pop();
            if let Some(&(parent, _)) = frames.last() {
                low[parent] = low[parent].min(low[v]);
            }
            if low[v] == index[v] {
                let mut component = Vec::new();
                while let Some(w) = stack.pop() {
                    on_stack[w] = false;
                    of[w] = members.len();
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                component.sort_unstable();
                members.push(component);
            }
        }
    }
    Components { of, members }
}

impl Components {
    /// Whether a component is a loop: several steps, or one step that goes to itself.
    pub(crate) fn is_cycle(&self, succ: &[Vec<usize>], c: usize) -> bool {
        match self.members[c].as_slice() {
            [one] => succ[*one].contains(one),
            _ => true,
        }
    }
}

/// The heaviest path from `start`, counting each node once: loops are collapsed into their
/// component (whose weight is the sum of its members), and the longest path is taken on that
/// acyclic condensation. Returns the total and the nodes of the path in walking order
/// (a loop's members in list order).
pub(crate) fn longest_path(succ: &[Vec<usize>], weights: &[u64], start: usize) -> (u64, Vec<usize>) {
    if start >= succ.len() {
        return (0, Vec::new());
    }
    let comps = components(succ);
    let count = comps.members.len();
    let mut best = vec![0u64; count];
    let mut via: Vec<Option<usize>> = vec![None; count];
    // Reverse topological order: successors of a component are already computed.
    for c in 0..count {
        let own: u64 = comps.members[c]
            .iter()
            .map(|&n| weights[n])
            .fold(0, u64::saturating_add);
        let mut tail = 0;
        for &n in &comps.members[c] {
            for &m in &succ[n] {
                let d = comps.of[m];
                if d != c && (via[c].is_none() || best[d] > tail) {
                    tail = best[d];
                    via[c] = Some(d);
                }
            }
        }
        best[c] = own.saturating_add(tail);
    }
    let mut path = Vec::new();
    let mut c = Some(comps.of[start]);
    while let Some(now) = c {
        path.extend(&comps.members[now]);
        c = via[now];
    }
    (best[comps.of[start]], path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reachability_both_ways() {
        // 0 → 1 → 2, 3 → 2, 4 alone
        let succ = vec![vec![1], vec![2], vec![], vec![2], vec![]];
        assert_eq!(reachable(&succ, 0), [true, true, true, false, false]);
        let goal = [false, false, true, false, false];
        assert_eq!(can_reach(&succ, &goal), [true, true, true, true, false]);
    }

    #[test]
    fn components_find_loops_in_reverse_topological_order() {
        // 0 → 1 ⇄ 2 → 3, 3 → 3
        let succ = vec![vec![1], vec![2], vec![1, 3], vec![3]];
        let comps = components(&succ);
        assert_eq!(comps.members, vec![vec![3], vec![1, 2], vec![0]]);
        assert!(comps.is_cycle(&succ, comps.of[1]));
        assert!(comps.is_cycle(&succ, comps.of[3]));
        assert!(!comps.is_cycle(&succ, comps.of[0]));
    }

    #[test]
    fn longest_path_counts_a_loop_once() {
        // 0 → 1 ⇄ 2 → 4; 0 → 3 → 4
        let succ = vec![vec![1, 3], vec![2], vec![1, 4], vec![4], vec![]];
        let (total, path) = longest_path(&succ, &[1, 10, 10, 5, 2], 0);
        assert_eq!(total, 23);
        assert_eq!(path, vec![0, 1, 2, 4]);
    }

    #[test]
    fn deep_chains_do_not_overflow_the_stack() {
        let n = 200_000;
        let succ: Vec<Vec<usize>> = (0..n)
            .map(|i| if i + 1 < n { vec![i + 1] } else { vec![] })
            .collect();
        assert_eq!(components(&succ).members.len(), n);
        assert_eq!(longest_path(&succ, &vec![1; n], 0).0, n as u64);
    }
}
