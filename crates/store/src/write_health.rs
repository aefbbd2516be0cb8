//! Whether the store can write right now, as its latest writes and write probes found. Health checks read it on
//! every request, so it lives in memory: reading it never touches the database.
//!
//! A write that fails because of the database itself (disk full, read-only, refused, unreachable) marks the store
//! unwritable with a short reason; only a successful write probe ([`crate::Store::probe_write`]) clears it. A
//! failed write of a caller's own making (a conflict, a missing row) says nothing about the database and is not
//! counted. Clearing only on a probe, never on any committed write, keeps health from flapping on a half-full disk
//! where an empty transaction still commits.

use std::fmt::Display;
use std::sync::Mutex;

use hookrelay_core::time::{UnixMillis, now_ms};

/// Why the database refuses writes, and since when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unwritable {
    /// Short, and safe to show to an unauthenticated caller: a category such as `the disk is full` or `the
    /// database is read-only (SQLSTATE 25006)`, never a path, a table or a value. The full error is in the log.
    pub reason: String,
    /// When writes were first seen failing since they last worked.
    pub since: UnixMillis,
}

/// The shared flag: `None` while writes work.
#[derive(Debug, Default)]
pub(crate) struct WriteHealth(Mutex<Option<Unwritable>>);

impl WriteHealth {
    /// Records that a write failed for `reason` (the public category); `cause` (the full error) is logged when the
    /// store turns unwritable, once, not on every failure after it.
    pub fn failed(&self, reason: String, cause: &dyn Display) {
        let mut state = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        match state.as_mut() {
            Some(unwritable) => unwritable.reason = reason,
            None => {
                tracing::error!(%reason, error = %cause, "writes to the database fail; health answers 503 until a \
                    write probe succeeds again");
                *state = Some(Unwritable { reason, since: now_ms() });
            }
        }
    }

    /// Records that a write probe succeeded.
    pub fn succeeded(&self) {
        let mut state = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(was) = state.take() {
            let seconds = now_ms().saturating_sub(was.since) as f64 / 1000.0;
            tracing::warn!(reason = %was.reason, seconds, "writes to the database work again");
        }
    }

    /// `Some` while writes fail.
    pub fn current(&self) -> Option<Unwritable> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_lasts_until_a_success_and_keeps_its_start() {
        let health = WriteHealth::default();
        assert_eq!(health.current(), None);
        health.failed("the disk is full".into(), &"ENOSPC");
        let first = health.current().expect("unwritable");
        assert_eq!(first.reason, "the disk is full");
        health.failed("disk I/O error".into(), &"EIO");
        let second = health.current().expect("still unwritable");
        assert_eq!((second.reason.as_str(), second.since), ("disk I/O error", first.since));
        health.succeeded();
        assert_eq!(health.current(), None);
    }
}
