//! Where a duplicated key was first written. The parser stops at the second `key:` and knows
//! only that one; the person fixing the file needs both to choose which to keep. The file is
//! read again with duplicates let through to a tree whose keys keep their positions.

use serde_saphyr::DuplicateKeyPolicy;

use super::tree::Node;
use crate::diagnostic::Pos;

/// The position of the first `key` in the mapping whose later `key` is at `second`; `None`
/// when the file cannot be read that way (the message then does without it).
pub(crate) fn first_of(text: &str, key: &str, second: Pos) -> Option<Pos> {
    let mut options = super::options();
    options.duplicate_keys = DuplicateKeyPolicy::PassThrough;
    let tree = serde_saphyr::from_str_with_options::<Node>(text, options).ok()?;
    find(&tree, key, second)
}

fn find(node: &Node, key: &str, second: Pos) -> Option<Pos> {
    match node {
        Node::Scalar => None,
        Node::Seq(items) => items.iter().find_map(|item| find(item, key, second)),
        Node::Map(entries) => {
            let is_second = entries
                .iter()
                .any(|(k, _)| k.value == key && Pos::of(k) == second);
            if is_second {
                return entries
                    .iter()
                    .map(|(k, _)| k)
                    .find(|k| k.value == key && Pos::of(k) != second)
                    .map(Pos::of);
            }
            entries.iter().find_map(|(_, value)| find(value, key, second))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_first_key_of_the_same_mapping() {
        let text = "a: 1\nb:\n  id: x\n  c: 2\n  id: y\nid: z\n";
        assert_eq!(first_of(text, "id", Pos::new(5, 3)), Some(Pos::new(3, 3)));
    }

    #[test]
    fn finds_it_in_a_flow_mapping() {
        let text = "steps: [{id: a, title: A, title: B}]\n";
        assert_eq!(first_of(text, "title", Pos::new(1, 27)), Some(Pos::new(1, 17)));
    }
}
