//! serde-saphyr's errors in the words of the person who wrote the file. The library words
//! some of them for the programmer calling it (a duplicate key: "set DuplicateKeyPolicy in
//! Options"), and renders an error met inside an alias's value with location suffixes that a
//! one-line headline cut mid-sentence ("invalid u32 (defined at line 2, column 8) (used").

use serde_saphyr::{DefaultMessageFormatter, Error, Location, MessageFormatter};

use crate::diagnostic::Pos;

/// What went wrong, located, before the parser's own hints are added.
pub(crate) struct Worded {
    pub pos: Pos,
    pub message: String,
    /// How many characters the caret underlines.
    pub width: usize,
    /// When the error is in a value an alias repeats: where that value is anchored.
    pub anchored_at: Option<Pos>,
}

/// Words `error`, read from `text`.
pub(crate) fn explain(error: &Error, text: &str) -> Worded {
    let error = error.without_snippet();
    if let Error::AliasError {
        error: inner,
        locations,
        ..
    } = error
    {
        let mut worded = explain(inner, text);
        let used = pos_of(locations.reference_location);
        let defined = pos_of(locations.defined_location);
        if let Some(used) = used {
            worded.pos = used;
            worded.width = token_at(text, used).map_or(1, |t| t.chars().count());
        }
        if defined.is_some() && defined != used {
            worded.anchored_at = defined;
        }
        return worded;
    }
    let pos = error.location().and_then(pos_of).unwrap_or(Pos::new(1, 1));
    let message = match error {
        Error::DuplicateMappingKey { key: Some(key), .. } => {
            let first = match super::duplicate::first_of(text, key, pos) {
                Some(first) if first.line == pos.line => {
                    format!(" (first at line {}, column {})", first.line, first.col)
                }
                Some(first) => format!(" (first at line {})", first.line),
                None => String::new(),
            };
            let width = key.chars().count();
            return Worded {
                pos,
                message: format!("key `{key}` appears twice in this mapping{first}: remove one"),
                width,
                anchored_at: None,
            };
        }
        Error::DuplicateMappingKey { key: None, .. } => {
            "a key appears twice in this mapping: remove one".to_string()
        }
        Error::UnknownAnchor { .. } => match token_at(text, pos).filter(|t| t.len() > 1) {
            Some(alias) => {
                let name = &alias[1..];
                return Worded {
                    pos,
                    message: format!(
                        "alias `{alias}` refers to no anchor: define `&{name}` on an earlier value, or write the value out"
                    ),
                    width: alias.chars().count(),
                    anchored_at: None,
                };
            }
            None => "this alias refers to no anchor: define the anchor on an earlier value, or write the value out".to_string(),
        },
        // Without location suffixes: the diagnostic's headline carries the position.
        other => DefaultMessageFormatter.format_message(other).into_owned(),
    };
    Worded {
        pos,
        message,
        width: 1,
        anchored_at: None,
    }
}

fn pos_of(location: Location) -> Option<Pos> {
    let pos = Pos::from_location(&location);
    (pos.line > 0).then_some(pos)
}

/// The alias (`*name`) that starts at `pos`, if one does.
fn token_at(text: &str, pos: Pos) -> Option<&str> {
    let line = text.lines().nth(pos.line.checked_sub(1)? as usize)?;
    let start = line
        .char_indices()
        .nth(pos.col.checked_sub(1)? as usize)
        .map(|(i, _)| i)?;
    let rest = &line[start..];
    if !rest.starts_with('*') {
        return None;
    }
    // YAML ends an alias's name at white space or a flow indicator.
    let end = rest
        .char_indices()
        .skip(1)
        .find(|(_, c)| c.is_whitespace() || matches!(c, ',' | '[' | ']' | '{' | '}'))
        .map_or(rest.len(), |(i, _)| i);
    Some(&rest[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_alias_ends_at_a_flow_indicator() {
        assert_eq!(token_at("a: [*x, *yz]\n", Pos::new(1, 9)), Some("*yz"));
        assert_eq!(token_at("a: *nope\n", Pos::new(1, 4)), Some("*nope"));
        assert_eq!(token_at("a: b\n", Pos::new(1, 4)), None);
    }
}
