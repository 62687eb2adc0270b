//! The regular expressions of a runbook (`expect.stdout`, `when.matches`), compiled once per
//! thread rather than at every attempt and decision: a walk judges the same few patterns over
//! and over (`runbook test` walks thousands of times).

use std::cell::RefCell;
use std::collections::HashMap;

/// Beyond this many patterns the cache starts over: a bound, never reached by real runbooks.
const MAX_CACHED: usize = 4096;

thread_local! {
    static COMPILED: RefCell<HashMap<String, Option<regex::Regex>>> = RefCell::new(HashMap::new());
}

/// `pattern` compiled, or `None` when it is not a valid regex (validation reports that).
pub(crate) fn compiled(pattern: &str) -> Option<regex::Regex> {
    COMPILED.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some(found) = cache.get(pattern) {
            return found.clone();
        }
        if cache.len() >= MAX_CACHED {
            cache.clear();
        }
        let re = regex::Regex::new(pattern).ok();
        cache.insert(pattern.to_string(), re.clone());
        re
    })
}

/// Whether `text` matches `pattern` (an invalid pattern matches nothing).
pub(crate) fn is_match(pattern: &str, text: &str) -> bool {
    compiled(pattern).is_some_and(|re| re.is_match(text))
}
