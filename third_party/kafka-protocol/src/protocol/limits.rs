//! Fjord patch: a bound on the elements one decode may build.
//!
//! A request's arrays and tagged fields cost far more memory decoded than
//! on the wire (an empty topic name is 2 bytes on the wire and about 90 in
//! a `Vec<MetadataRequestTopic>`), so bounding the frame alone does not
//! bound the memory of decoding it. [`decode_with_element_limit`] runs a
//! decode with a per-thread budget: every array charges its element count,
//! and every tagged-field section its field count, *before* anything is
//! allocated for them; past the limit the decode fails. Decoding is
//! synchronous, so a thread-local budget covers exactly one decode.

use std::cell::Cell;

use anyhow::{bail, Result};

thread_local! {
    /// `(limit, used)` while a bounded decode runs on this thread.
    static BUDGET: Cell<Option<(usize, usize)>> = const { Cell::new(None) };
}

/// What a bounded decode built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElementCount {
    /// Array elements and tagged fields charged (past the limit, the count
    /// that crossed it).
    pub used: usize,
    /// Whether the decode stopped because the limit was crossed.
    pub exceeded: bool,
}

/// Runs `decode` with at most `limit` array elements and tagged fields in
/// total, and says how many it charged.
pub fn decode_with_element_limit<R>(limit: usize, decode: impl FnOnce() -> R) -> (R, ElementCount) {
    /// Clears the budget even if `decode` panics.
    struct Reset(Option<(usize, usize)>);
    impl Drop for Reset {
        fn drop(&mut self) {
            BUDGET.with(|b| b.set(self.0));
        }
    }
    let outer = BUDGET.with(|b| b.replace(Some((limit, 0))));
    let reset = Reset(outer);
    let result = decode();
    let (_, used) = BUDGET.with(|b| b.get()).unwrap_or((limit, 0));
    drop(reset);
    (
        result,
        ElementCount {
            used,
            exceeded: used > limit,
        },
    )
}

/// Charges `n` elements to the running bounded decode, if any.
pub(crate) fn charge(n: usize) -> Result<()> {
    BUDGET.with(|b| {
        if let Some((limit, used)) = b.get() {
            let used = used.saturating_add(n);
            b.set(Some((limit, used)));
            if used > limit {
                bail!("more than {limit} array elements and tagged fields in one message");
            }
        }
        Ok(())
    })
}
