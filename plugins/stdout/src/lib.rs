//! `stdout`: a sink that writes each record's value to standard output, one
//! line per record — for development and `fjord pipeline run`.
//!
//! Config: `format` = `value` (default: the value as text) or `json` (key,
//! value, headers, timestamp as one JSON object per line).
//!
//! Not for production delivery: standard output of the broker is its log.

use fjord_sdk::{Config, ConfigKey, Context, Error, Plugin, PluginInfo, RecordRef, Sink};
use std::io::Write;

/// What a line holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Value,
    Json,
}

/// The sink. Lines are buffered and written on `flush`.
#[derive(Debug)]
pub struct Stdout {
    format: Format,
    buf: Vec<u8>,
}

impl Stdout {
    fn line(&self, r: &RecordRef<'_>, out: &mut Vec<u8>) {
        match self.format {
            Format::Value => out.extend_from_slice(r.value.unwrap_or_default()),
            Format::Json => {
                let json = fjord_sdk::jsonl::record_to_json(&r.to_record());
                out.extend_from_slice(json.to_string().as_bytes());
            }
        }
        out.push(b'\n');
    }
}

impl Plugin for Stdout {
    fn info() -> PluginInfo {
        PluginInfo::new("stdout", env!("CARGO_PKG_VERSION"))
            .description("writes each record to standard output, one line per record")
            .key(ConfigKey::optional(
                "format",
                Some("value"),
                "`value` (the value as text) or `json` (the whole record)",
            ))
    }

    fn init(config: &Config) -> Result<Self, Error> {
        let format = match config.get("format").unwrap_or("value") {
            "value" => Format::Value,
            "json" => Format::Json,
            other => {
                return Err(Error::msg(format!(
                    "config key `format`: `{other}` is not `value` or `json`"
                )));
            }
        };
        Ok(Stdout {
            format,
            buf: Vec::new(),
        })
    }
}

#[fjord_sdk::sink]
impl Sink for Stdout {
    fn write(&mut self, record: RecordRef<'_>, _: &mut Context<'_>) -> Result<(), Error> {
        let mut buf = std::mem::take(&mut self.buf);
        self.line(&record, &mut buf);
        self.buf = buf;
        Ok(())
    }

    fn flush(&mut self, _: &mut Context<'_>) -> Result<(), Error> {
        let mut out = std::io::stdout().lock();
        out.write_all(&self.buf)?;
        out.flush()?;
        self.buf.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fjord_sdk::Record;

    #[test]
    fn lines_per_format() {
        let input = fjord_sdk::encode(&[Record::new("a").with_key("k"), Record::new("b")]);
        let value = Stdout::init(&Config::default()).unwrap();
        let json = Stdout::init(&Config::from_pairs([("format", "json")])).unwrap();
        let mut v = Vec::new();
        let mut j = Vec::new();
        for r in fjord_sdk::BatchReader::new(&input).unwrap() {
            let r = r.unwrap();
            value.line(&r, &mut v);
            json.line(&r, &mut j);
        }
        assert_eq!(v, b"a\nb\n");
        let first: serde_json::Value =
            serde_json::from_slice(j.split(|b| *b == b'\n').next().unwrap()).unwrap();
        assert_eq!(first["key"], "k");
        assert_eq!(first["value"], "a");
    }

    #[test]
    fn unknown_format_is_refused() {
        let err = Stdout::init(&Config::from_pairs([("format", "xml")])).unwrap_err();
        assert!(err.message().contains("format"), "{err}");
    }

    #[test]
    fn writes_through_the_harness() {
        let mut h = fjord_sdk::testing::Harness::<Stdout>::new(&[]).unwrap();
        h.write(vec![Record::new("to stdout")]).unwrap();
        assert!(h.plugin.buf.is_empty());
    }
}
