//! What to do about the YAML mistakes people make most, read from the line the parser stopped
//! at: a `: ` inside an unquoted value (`title: Restart: the app`), a key indented deeper than
//! the one above it (YAML reads it as more of that value), and a key indented off its mapping
//! (serde then says a field is missing). The parser's message says what it saw; these say why
//! and what to type instead.

use crate::diagnostic::Pos;

/// A hint for a YAML syntax error at `pos`, when the line shows one of the mistakes above.
pub(crate) fn for_syntax(text: &str, pos: Pos, message: &str) -> Option<String> {
    let colon_error = message.contains("mapping values are not allowed")
        || message.contains("did not find expected ',' or '}'");
    if !colon_error {
        return None;
    }
    let lines: Vec<&str> = text.lines().collect();
    let line = *lines.get(pos.line.checked_sub(1)? as usize)?;
    let chars: Vec<char> = line.chars().collect();
    let at = pos.col.checked_sub(1)? as usize;
    if chars.get(at) != Some(&':') {
        return None;
    }
    let before: String = chars[..at].iter().collect();
    if is_key(before.trim_start().trim_start_matches("- ").trim()) && !before.contains('{') {
        return deeper_than_above(&lines, pos.line as usize - 1);
    }
    colon_in_value(&chars, at)
}

/// `title: Restart: the app`: the first `: ` makes the key, the second one a mapping YAML does
/// not allow there. The value quoted is the fix.
fn colon_in_value(chars: &[char], at: usize) -> Option<String> {
    let before: String = chars[..at].iter().collect();
    // The key is the plain word before the last `: ` before the stray colon, starting the line
    // (after any `- `) or an entry of a flow mapping (after `{` or `,`).
    let key_colon = before.rfind(": ")?;
    let head = &before[..key_colon];
    let start = head.rfind(['{', ',']).map_or(0, |i| i + 1);
    let key = head[start..].trim_start().trim_start_matches("- ").trim();
    if !is_key(key) {
        return None;
    }
    let flow = head[..start].contains('{');
    let value_start = before[..key_colon].chars().count() + 2;
    let rest: String = chars[value_start..].iter().collect();
    let value = if flow {
        // In a flow mapping the value ends at the next `,` or `}` after the stray colon.
        let after = at - value_start;
        let end = rest
            .char_indices()
            .find(|&(i, c)| rest[..i].chars().count() > after && matches!(c, ',' | '}'))
            .map_or(rest.len(), |(i, _)| i);
        rest[..end].trim().to_string()
    } else {
        // A ` #` starts a comment in a plain value.
        let end = rest.find(" #").unwrap_or(rest.len());
        rest[..end].trim().to_string()
    };
    if value.is_empty() {
        return None;
    }
    Some(format!(
        "a `: ` inside a value starts a mapping in YAML; quote it: {key}: {}",
        quoted(&value)
    ))
}

/// A line whose key YAML refused (`mapping values are not allowed` at its own colon) and that
/// is indented deeper than the line above: YAML read it as more of the value above.
fn deeper_than_above(lines: &[&str], index: usize) -> Option<String> {
    let line = lines[index];
    let indent = indentation(line);
    let (above_no, above) = lines[..index]
        .iter()
        .enumerate()
        .rev()
        .find(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))?;
    let above_key_col = key_column(above)?;
    if indent <= above_key_col {
        return None;
    }
    let key = line
        .trim_start()
        .trim_start_matches("- ")
        .split(':')
        .next()?
        .trim();
    let above_key = above[above_key_col..].split(':').next()?.trim();
    Some(format!(
        "`{key}:` is indented deeper than `{above_key}:` on line {}, so YAML reads it as more of that value: indent `{key}:` like `{above_key}:` (column {})",
        above_no + 1,
        above_key_col + 1
    ))
}

/// For `missing field `title``, reported in the mapping whose keys are at `pos.col` around
/// `pos.line`: a `title:` just after the mapping but at another column is that field, indented
/// wrong.
pub(crate) fn misindented(text: &str, pos: Pos, field: &str) -> Option<String> {
    let lines: Vec<&str> = text.lines().collect();
    let col = pos.col.checked_sub(1)? as usize;
    let mut index = pos.line.checked_sub(1)? as usize;
    if index >= lines.len() {
        return None;
    }
    // The mapping's first line: its own `- ` when it is an item of a list.
    let mut dash = None;
    loop {
        let line = lines[index];
        if let Some(d) = item_dash(line, col) {
            dash = Some(d);
            break;
        }
        let blank = line.trim().is_empty() || line.trim_start().starts_with('#');
        if index == 0 || (!blank && indentation(line) < col) {
            break;
        }
        index -= 1;
    }
    let floor = dash.unwrap_or(col);
    for (n, line) in lines.iter().enumerate().skip(pos.line as usize) {
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let indent = indentation(line);
        let content = line.trim_start();
        if indent < floor || (content.starts_with("- ") && indent <= floor) {
            break;
        }
        let key = content.split(':').next().unwrap_or("");
        let is_field = key == field && content[key.len()..].starts_with(':');
        if is_field && indent != col {
            return Some(format!(
                "`{field}:` on line {} is at column {}, but the keys of this mapping are at column {}: indent it to line up with them",
                n + 1,
                indent + 1,
                col + 1
            ));
        }
    }
    None
}

/// The column of the `-` when `line` is `  - key: ...` with the key at column `col` (0-based).
fn item_dash(line: &str, col: usize) -> Option<usize> {
    let head: String = line.chars().take(col).collect();
    let dash = head.trim_end();
    (dash.trim_start() == "-" && line.chars().nth(col).is_some_and(|c| !c.is_whitespace()))
        .then(|| dash.len() - 1)
}

/// Where the key of a `key: value` (or `- key: value`) line starts, 0-based.
fn key_column(line: &str) -> Option<usize> {
    let indent = indentation(line);
    let content = &line[indent..];
    let (offset, content) = match content.strip_prefix("- ") {
        Some(rest) => (2 + indentation(rest), rest.trim_start()),
        None => (0, content),
    };
    let key = content.split(':').next()?;
    (is_key(key) && content[key.len()..].starts_with(':')).then_some(indent + offset)
}

fn indentation(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// A plain key of the format: letters, digits, `_` and `-`.
fn is_key(word: &str) -> bool {
    !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// `"value"`, or `'value'` (quotes doubled) when the value has `"` or `\`.
fn quoted(value: &str) -> String {
    if value.contains(['"', '\\']) {
        format!("'{}'", value.replace('\'', "''"))
    } else {
        format!("\"{value}\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLON: &str = "mapping values are not allowed in this context";

    #[test]
    fn a_colon_in_a_block_value_is_quoted() {
        let text = "steps:\n  - id: a\n    title: Restart: the app # now\n";
        assert_eq!(
            for_syntax(text, Pos::new(3, 19), COLON).as_deref(),
            Some("a `: ` inside a value starts a mapping in YAML; quote it: title: \"Restart: the app\"")
        );
    }

    #[test]
    fn a_colon_in_a_flow_value_is_quoted_up_to_the_next_entry() {
        let text = "steps:\n  - {id: a, title: Say \"hi\": now, end: resolved}\n";
        assert_eq!(
            for_syntax(text, Pos::new(2, 28), "did not find expected ',' or '}'").as_deref(),
            Some("a `: ` inside a value starts a mapping in YAML; quote it: title: 'Say \"hi\": now'")
        );
    }

    #[test]
    fn a_key_deeper_than_the_one_above_is_more_of_its_value() {
        let text = "steps:\n  - id: a\n    run: x\n     title: A\n";
        assert_eq!(
            for_syntax(text, Pos::new(4, 11), COLON).as_deref(),
            Some(
                "`title:` is indented deeper than `run:` on line 3, so YAML reads it as more of that value: indent `title:` like `run:` (column 5)"
            )
        );
    }

    #[test]
    fn a_missing_field_written_at_another_column_is_found() {
        let text = "steps:\n  - id: a\n    run: x\n   title: A\n  - id: b\n    title: B\n";
        assert_eq!(
            misindented(text, Pos::new(3, 5), "title").as_deref(),
            Some(
                "`title:` on line 4 is at column 4, but the keys of this mapping are at column 5: indent it to line up with them"
            )
        );
        // The next item's `title` is not this one's.
        let text = "steps:\n  - id: a\n    run: x\n  - id: b\n    title: B\n";
        assert_eq!(misindented(text, Pos::new(3, 5), "title"), None);
    }
}
