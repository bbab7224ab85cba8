//! `fjord-admin` is Fjord's admin surface; [`metrics`] is what `/metrics` serves.

pub mod metrics;
