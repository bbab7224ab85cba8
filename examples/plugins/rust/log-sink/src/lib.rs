//! `log-sink`: an example sink that writes each record to the host's log
//! and counts records and bytes in the host's metrics.
//!
//! Config: `level`, the log level of the lines: `trace`, `debug`, `info`
//! (default), `warn` or `error`.
//!
//! What it shows: the host services a plugin calls (`ctx.log`,
//! `ctx.counter`), and the sink protocol: `write` per record, `flush` when
//! the pipeline wants everything durable before it commits its progress.
//! A sink to a real system buffers in `write` and sends in `flush`; here the
//! host's log is the destination, so there is nothing to buffer.

use fjord_sdk::{Config, ConfigKey, Context, Error, Level, Plugin, PluginInfo, RecordRef, Sink};

/// The sink.
#[derive(Debug)]
pub struct LogSink {
    level: Level,
    /// Records since the last flush, for its log line.
    unflushed: u64,
}

fn parse_level(text: &str) -> Result<Level, Error> {
    Ok(match text {
        "trace" => Level::Trace,
        "debug" => Level::Debug,
        "info" => Level::Info,
        "warn" => Level::Warn,
        "error" => Level::Error,
        other => {
            return Err(Error::msg(format!(
                "config key `level`: `{other}` is not trace, debug, info, warn or error"
            )));
        }
    })
}

/// The line logged for a record: key and value as text when they are,
/// their length otherwise (binary does not belong in a log line).
fn line(r: &RecordRef<'_>) -> String {
    fn show(b: Option<&[u8]>) -> String {
        match b {
            None => "null".to_owned(),
            Some(b) => match std::str::from_utf8(b) {
                Ok(text) => format!("{text:?}"),
                Err(_) => format!("<{} bytes>", b.len()),
            },
        }
    }
    format!(
        "partition={} offset={} key={} value={}",
        r.partition,
        r.offset,
        show(r.key),
        show(r.value)
    )
}

impl Plugin for LogSink {
    fn info() -> PluginInfo {
        PluginInfo::new("log-sink", env!("CARGO_PKG_VERSION"))
            .description("logs each record through the host and counts records and bytes")
            .key(ConfigKey::optional(
                "level",
                Some("info"),
                "log level: trace, debug, info, warn or error",
            ))
    }

    fn init(config: &Config) -> Result<Self, Error> {
        Ok(LogSink {
            level: parse_level(config.get("level").unwrap_or("info"))?,
            unflushed: 0,
        })
    }
}

#[fjord_sdk::sink]
impl Sink for LogSink {
    fn write(&mut self, record: RecordRef<'_>, ctx: &mut Context<'_>) -> Result<(), Error> {
        ctx.log(self.level, &line(&record));
        ctx.counter("records", 1);
        ctx.counter(
            "bytes",
            (record.key.map_or(0, <[u8]>::len) + record.value.map_or(0, <[u8]>::len)) as u64,
        );
        self.unflushed += 1;
        Ok(())
    }

    fn flush(&mut self, ctx: &mut Context<'_>) -> Result<(), Error> {
        let n = std::mem::take(&mut self.unflushed);
        ctx.log(Level::Debug, &format!("flushed {n} records"));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fjord_sdk::Record;
    use fjord_sdk::testing::Harness;

    #[test]
    fn logs_and_counts_each_record() {
        let mut h = Harness::<LogSink>::new(&[("level", "warn")]).unwrap();
        h.write(vec![
            Record::new("hello").with_key("k"),
            Record::new(vec![0xff, 0xfe]),
        ])
        .unwrap();
        assert_eq!(
            h.host.logs,
            [
                (
                    Level::Warn,
                    r#"partition=0 offset=0 key="k" value="hello""#.to_owned()
                ),
                (
                    Level::Warn,
                    "partition=0 offset=0 key=null value=<2 bytes>".to_owned()
                ),
                (Level::Debug, "flushed 2 records".to_owned()),
            ]
        );
        assert_eq!(h.host.counter("records"), 2);
        assert_eq!(h.host.counter("bytes"), 1 + 5 + 2);
    }

    #[test]
    fn unknown_level_is_refused() {
        let err = Harness::<LogSink>::new(&[("level", "loud")]).unwrap_err();
        assert!(err.message().contains("level"), "{err}");
    }
}
