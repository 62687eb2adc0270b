//! `--format json`: one document, the same shape for one run or several, versioned by
//! `schema` and documented field by field in `docs/review.md`. Written straight to its
//! destination: a run of 100,000 steps is never held as one string.

use std::io::Write;

use serde::Serialize;

use super::{Comparison, Review, SCHEMA};

#[derive(Serialize)]
struct Document<'a> {
    schema: &'static str,
    runs: &'a [Review],
    comparison: Option<&'a Comparison>,
}

pub(crate) fn write(
    out: &mut impl Write,
    reviews: &[Review],
    comparison: Option<&Comparison>,
) -> std::io::Result<()> {
    let document = Document {
        schema: SCHEMA,
        runs: reviews,
        comparison,
    };
    serde_json::to_writer_pretty(&mut *out, &document).map_err(std::io::Error::from)?;
    out.write_all(b"\n")
}
