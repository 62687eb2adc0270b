//! Writing to stderr without a panic: when the terminal went away (EIO) or stderr is closed,
//! the line is lost, never the process or its exit code (issue 23: the trail is the record).

/// `eprintln!` that cannot panic.
macro_rules! ewriteln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// `eprint!` that cannot panic (see `ewriteln!`).
macro_rules! ewrite {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr(), $($arg)*);
    }};
}

pub(crate) use {ewrite, ewriteln};
