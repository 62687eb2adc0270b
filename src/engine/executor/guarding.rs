//! Guards (design §20).

/// The runbook's guards as they are being polled.
pub(crate) struct Guards;
