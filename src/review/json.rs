//! `--format json`: one document, the same shape for one run or several, versioned by
//! `schema` and documented field by field in `docs/review.md`.

use serde::Serialize;

use super::{Comparison, Review, SCHEMA};
use crate::error::Error;

#[derive(Serialize)]
struct Document<'a> {
    schema: &'static str,
    runs: &'a [Review],
    comparison: Option<&'a Comparison>,
}

pub fn render(reviews: &[Review], comparison: Option<&Comparison>) -> Result<String, Error> {
    let document = Document {
        schema: SCHEMA,
        runs: reviews,
        comparison,
    };
    let mut text = serde_json::to_string_pretty(&document)
        .map_err(|e| Error::runtime(format!("cannot serialize the review: {e}")))?;
    text.push('\n');
    Ok(text)
}
