//! `counter`: an example source that emits the numbers 0, 1, 2, … as text
//! values, and resumes where it left off after a restart.
//!
//! Config: `per_poll`, how many numbers one poll emits at most (default
//! 10); `limit`, the number to stop before (default: never stop).
//!
//! What it shows: the position protocol of a source. After each poll whose
//! records it has written, the host stores [`Source::position`] (here the
//! next number, as decimal text); after a restart it hands that back to
//! [`Source::seek`], so no number is emitted twice or skipped.

use fjord_sdk::{
    BatchWriter, Config, ConfigKey, Context, Error, Plugin, PluginInfo, Record, Source,
};

/// The source.
#[derive(Debug)]
pub struct Counter {
    next: u64,
    per_poll: u32,
    /// `u64::MAX` when unlimited: the counter would take centuries to get
    /// there.
    limit: u64,
}

impl Plugin for Counter {
    fn info() -> PluginInfo {
        PluginInfo::new("counter", env!("CARGO_PKG_VERSION"))
            .description("emits 0, 1, 2, … and resumes where it left off")
            .key(ConfigKey::optional(
                "per_poll",
                Some("10"),
                "numbers emitted per poll at most",
            ))
            .key(ConfigKey::optional(
                "limit",
                None,
                "stop before this number (default: never)",
            ))
    }

    fn init(config: &Config) -> Result<Self, Error> {
        Ok(Counter {
            next: 0,
            per_poll: config.parse_or("per_poll", 10)?,
            limit: config.parse_or("limit", u64::MAX)?,
        })
    }
}

#[fjord_sdk::source]
impl Source for Counter {
    fn seek(&mut self, position: &[u8]) -> Result<(), Error> {
        // A position this plugin did not write is an error, not a silent
        // restart from 0: re-emitting everything is rarely what anyone wants.
        let text =
            std::str::from_utf8(position).map_err(|_| Error::msg("position is not UTF-8 text"))?;
        self.next = text
            .parse()
            .map_err(|e| Error::msg(format!("position `{text}`: {e}")))?;
        Ok(())
    }

    fn poll(
        &mut self,
        max: u32,
        out: &mut BatchWriter,
        ctx: &mut Context<'_>,
    ) -> Result<(), Error> {
        let n = u64::from(max.min(self.per_poll)).min(self.limit.saturating_sub(self.next));
        for _ in 0..n {
            // Timestamp 0: a counter has no time of its own. A real source
            // sets the time the record was read or created.
            out.emit(&Record::new(self.next.to_string()));
            self.next += 1;
        }
        ctx.counter("emitted", n);
        Ok(())
    }

    fn position(&self) -> Vec<u8> {
        self.next.to_string().into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fjord_sdk::testing::Harness;

    fn values(records: &[Record]) -> Vec<&str> {
        records.iter().filter_map(Record::value_str).collect()
    }

    #[test]
    fn counts_upward_per_poll() {
        let mut h = Harness::<Counter>::new(&[("per_poll", "3")]).unwrap();
        let (out, position) = h.poll(100).unwrap();
        assert_eq!(values(&out), ["0", "1", "2"]);
        assert_eq!(position, b"3");
        // The host's `max` wins when it is smaller.
        let (out, position) = h.poll(2).unwrap();
        assert_eq!(values(&out), ["3", "4"]);
        assert_eq!(position, b"5");
        assert_eq!(h.host.counter("emitted"), 5);
    }

    #[test]
    fn seek_resumes_from_a_stored_position() {
        let mut h = Harness::<Counter>::new(&[("per_poll", "2")]).unwrap();
        h.seek(b"41").unwrap();
        let (out, position) = h.poll(10).unwrap();
        assert_eq!(values(&out), ["41", "42"]);
        assert_eq!(position, b"43");
    }

    #[test]
    fn stops_at_the_limit() {
        let mut h = Harness::<Counter>::new(&[("per_poll", "4"), ("limit", "6")]).unwrap();
        assert_eq!(h.poll(10).unwrap().0.len(), 4);
        assert_eq!(values(&h.poll(10).unwrap().0), ["4", "5"]);
        let (out, position) = h.poll(10).unwrap();
        assert!(out.is_empty());
        assert_eq!(position, b"6");
    }

    #[test]
    fn bad_position_and_config_are_errors() {
        let mut h = Harness::<Counter>::new(&[]).unwrap();
        assert!(h.seek(b"not a number").is_err());
        assert!(h.seek(&[0xff]).is_err());
        let err = Harness::<Counter>::new(&[("limit", "-1")]).unwrap_err();
        assert!(err.message().contains("limit"), "{err}");
    }
}
