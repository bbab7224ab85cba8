//! `csv`: a serializer that lets users produce and consume CSV lines while
//! the topic stores one JSON object per record, keyed by column name.
//!
//! Config: `columns` (required), the header as comma-separated names;
//! `delimiter` (default `,`; one ASCII character, or `tab`); `infer_types`
//! (default `false`): when `true`, fields that read as integers, finite
//! floats, `true` or `false` are stored as JSON numbers and booleans instead
//! of strings.
//!
//! `serialize` (produce): one CSV line, quoted as RFC 4180 allows, becomes
//! `{"col1":"…","col2":"…"}` in column order; a line with another number of
//! fields than columns is refused. `deserialize` (consume): a JSON object
//! becomes one line in column order, without the line terminator; a missing
//! or `null` field is empty, numbers and booleans are written as their JSON
//! text, nested arrays and objects as compact JSON, and quoting is the `csv`
//! crate's. Fields not among the columns are left out.
//!
//! Not for: files with a header line (give the header as `columns`), or
//! several lines per record.

use fjord_sdk::{Config, ConfigKey, Error, Plugin, PluginInfo, Serializer};
use serde_json::Value;

/// The serializer.
#[derive(Debug)]
pub struct Csv {
    columns: Vec<String>,
    delimiter: u8,
    infer_types: bool,
}

fn parse_columns(s: &str) -> Result<Vec<String>, Error> {
    let columns: Vec<String> = s.split(',').map(|c| c.trim().to_owned()).collect();
    if let Some(i) = columns.iter().position(String::is_empty) {
        return Err(Error::msg(format!(
            "config key `columns`: column {} of `{s}` has no name",
            i + 1
        )));
    }
    for (i, c) in columns.iter().enumerate() {
        if columns[..i].contains(c) {
            return Err(Error::msg(format!(
                "config key `columns`: `{c}` appears twice"
            )));
        }
    }
    Ok(columns)
}

fn parse_delimiter(s: &str) -> Result<u8, Error> {
    match s {
        "tab" | "\\t" | "\t" => Ok(b'\t'),
        _ if s.len() == 1 && s.is_ascii() && !matches!(s, "\"" | "\n" | "\r") => {
            Ok(s.as_bytes()[0])
        }
        _ => Err(Error::msg(format!(
            "config key `delimiter`: `{s}` is not one ASCII character (or `tab`) other than a quote or newline"
        ))),
    }
}

/// A field as JSON: a number or boolean when `infer` and it reads as one.
fn field_value(field: &str, infer: bool) -> Value {
    if infer {
        if let Ok(i) = field.parse::<i64>() {
            return Value::from(i);
        }
        if let Ok(u) = field.parse::<u64>() {
            return Value::from(u);
        }
        match field {
            "true" => return Value::Bool(true),
            "false" => return Value::Bool(false),
            _ => {}
        }
        // Only spellings JSON itself allows: Rust also parses `inf`, `NaN`,
        // `+1` and `.5`, which would not come back as the same text.
        let json_like = field
            .strip_prefix('-')
            .unwrap_or(field)
            .starts_with(|c: char| c.is_ascii_digit());
        if json_like
            && let Some(n) = field
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
        {
            return Value::Number(n);
        }
    }
    Value::String(field.to_owned())
}

impl Csv {
    fn reader<'a>(&self, input: &'a [u8]) -> csv::Reader<&'a [u8]> {
        csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(self.delimiter)
            .from_reader(input)
    }
}

impl Plugin for Csv {
    fn info() -> PluginInfo {
        PluginInfo::new("csv", env!("CARGO_PKG_VERSION"))
            .description("CSV lines for users, JSON objects keyed by column in the topic")
            .key(ConfigKey::required(
                "columns",
                "the header: comma-separated column names, e.g. `id,name,price`",
            ))
            .key(ConfigKey::optional(
                "delimiter",
                Some(","),
                "field separator: one ASCII character, or `tab`",
            ))
            .key(ConfigKey::optional(
                "infer_types",
                Some("false"),
                "`true` to store numbers and true/false as JSON numbers and booleans",
            ))
    }

    fn init(config: &Config) -> Result<Self, Error> {
        Ok(Csv {
            columns: parse_columns(config.require("columns")?)?,
            delimiter: parse_delimiter(config.get("delimiter").unwrap_or(","))?,
            infer_types: config.parse_or("infer_types", false)?,
        })
    }
}

#[fjord_sdk::serializer]
impl Serializer for Csv {
    fn serialize(&mut self, input: &[u8]) -> Result<Vec<u8>, Error> {
        let mut reader = self.reader(input);
        let mut records = reader.records();
        let record = records
            .next()
            .ok_or_else(|| Error::msg("empty input: expected one CSV line"))?
            .map_err(|e| Error::msg(format!("not CSV: {e}")))?;
        if records.next().is_some() {
            return Err(Error::msg(
                "more than one CSV line: expected one per record",
            ));
        }
        if record.len() != self.columns.len() {
            return Err(Error::msg(format!(
                "expected {} fields ({}), found {}",
                self.columns.len(),
                self.columns.join(","),
                record.len()
            )));
        }
        // Written by hand so keys keep column order (serde_json's map sorts).
        let mut out = Vec::with_capacity(input.len() * 2);
        out.push(b'{');
        for (i, (name, field)) in self.columns.iter().zip(record.iter()).enumerate() {
            if i > 0 {
                out.push(b',');
            }
            serde_json::to_writer(&mut out, name)?;
            out.push(b':');
            serde_json::to_writer(&mut out, &field_value(field, self.infer_types))?;
        }
        out.push(b'}');
        Ok(out)
    }

    fn deserialize(&mut self, bytes: &[u8]) -> Result<Vec<u8>, Error> {
        let object = match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(m)) => m,
            Ok(_) => return Err(Error::msg("stored value is JSON but not an object")),
            Err(e) => return Err(Error::msg(format!("stored value is not JSON: {e}"))),
        };
        let fields = self.columns.iter().map(|c| match object.get(c) {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        });
        let mut writer = csv::WriterBuilder::new()
            .delimiter(self.delimiter)
            .from_writer(Vec::new());
        writer.write_record(fields)?;
        let mut line = writer
            .into_inner()
            .map_err(|e| Error::msg(e.error().to_string()))?;
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        Ok(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fjord_sdk::testing::Harness;

    fn harness(extra: &[(&str, &str)]) -> Harness<Csv> {
        let mut config = vec![("columns", "id, name,price")];
        config.extend_from_slice(extra);
        Harness::new(&config).unwrap()
    }

    fn text(b: Vec<u8>) -> String {
        String::from_utf8(b).unwrap()
    }

    #[test]
    fn serialize_keys_fields_by_column_in_order() {
        let mut h = harness(&[]);
        let out = text(h.serialize(b"7,widget,9.50\n").unwrap());
        assert_eq!(out, r#"{"id":"7","name":"widget","price":"9.50"}"#);
        let out = text(h.serialize(b"8,gadget,1").unwrap());
        assert_eq!(out, r#"{"id":"8","name":"gadget","price":"1"}"#);
    }

    #[test]
    fn quoted_fields_are_unquoted() {
        let mut h = harness(&[]);
        let out = text(h.serialize(b"1,\"a, \"\"b\"\"\nc\",\"\"").unwrap());
        assert_eq!(out, r#"{"id":"1","name":"a, \"b\"\nc","price":""}"#);
    }

    #[test]
    fn wrong_field_count_names_expected_and_found() {
        let mut h = harness(&[]);
        let err = h.serialize(b"1,2").unwrap_err();
        assert!(err.message().contains("expected 3"), "{err}");
        assert!(err.message().contains("found 2"), "{err}");
        let err = h.serialize(b"1,2,3,4").unwrap_err();
        assert!(err.message().contains("found 4"), "{err}");
    }

    #[test]
    fn empty_and_multi_line_input_is_refused() {
        let mut h = harness(&[]);
        assert!(h.serialize(b"").is_err());
        let err = h.serialize(b"1,a,2\n3,b,4\n").unwrap_err();
        assert!(err.message().contains("more than one"), "{err}");
    }

    #[test]
    fn infer_types_stores_numbers_and_booleans() {
        let mut h = Harness::<Csv>::new(&[("columns", "a,b,c,d,e,f,g,h"), ("infer_types", "true")])
            .unwrap();
        let out = text(h.serialize(b"-12,3.5,true,false,x,1e3,NaN,.5").unwrap());
        assert_eq!(
            out,
            r#"{"a":-12,"b":3.5,"c":true,"d":false,"e":"x","f":1000.0,"g":"NaN","h":".5"}"#
        );
        let mut h = harness(&[]);
        let out = text(h.serialize(b"-12,true,3.5").unwrap());
        assert_eq!(out, r#"{"id":"-12","name":"true","price":"3.5"}"#);
    }

    #[test]
    fn deserialize_writes_columns_in_order() {
        let mut h = harness(&[]);
        let line = h
            .deserialize(br#"{"price":2.5,"name":"a \"q\", b","id":1,"other":"x"}"#)
            .unwrap();
        assert_eq!(text(line), r#"1,"a ""q"", b",2.5"#);
    }

    #[test]
    fn missing_and_null_fields_are_empty() {
        let mut h = harness(&[]);
        assert_eq!(
            text(h.deserialize(br#"{"name":"n","id":null}"#).unwrap()),
            ",n,"
        );
        assert_eq!(text(h.deserialize(br#"{}"#).unwrap()), ",,");
    }

    #[test]
    fn nested_values_are_json_text() {
        let mut h = harness(&[]);
        let line = text(h.deserialize(br#"{"id":[1,2],"name":{"a":true}}"#).unwrap());
        assert_eq!(line, r#""[1,2]","{""a"":true}","#);
    }

    #[test]
    fn deserialize_refuses_non_objects() {
        let mut h = harness(&[]);
        assert!(
            h.deserialize(b"[1,2,3]")
                .unwrap_err()
                .message()
                .contains("not an object")
        );
        assert!(
            h.deserialize(b"1,2,3")
                .unwrap_err()
                .message()
                .contains("not JSON")
        );
    }

    #[test]
    fn round_trips_with_a_tab_delimiter() {
        let mut h = harness(&[("delimiter", "tab"), ("infer_types", "true")]);
        let line = b"42\tsome, text\t0.25";
        let stored = h.serialize(line).unwrap();
        assert_eq!(
            text(stored.clone()),
            r#"{"id":42,"name":"some, text","price":0.25}"#
        );
        assert_eq!(h.deserialize(&stored).unwrap(), line);
    }

    #[test]
    fn round_trips_with_quotes_and_semicolons() {
        let mut h = harness(&[("delimiter", ";")]);
        let line = b"1;\"a;b\";\"say \"\"hi\"\"\"";
        let stored = h.serialize(line).unwrap();
        assert_eq!(h.deserialize(&stored).unwrap(), line);
    }

    #[test]
    fn bad_config_names_the_key() {
        let cases: [&[(&str, &str)]; 6] = [
            &[],
            &[("columns", "a,,b")],
            &[("columns", "a,b,a")],
            &[("columns", "a"), ("delimiter", "ab")],
            &[("columns", "a"), ("delimiter", "\"")],
            &[("columns", "a"), ("infer_types", "1")],
        ];
        let keys = [
            "columns",
            "columns",
            "columns",
            "delimiter",
            "delimiter",
            "infer_types",
        ];
        for (config, key) in cases.iter().zip(keys) {
            let err = Csv::init(&Config::from_pairs(config.iter().copied())).unwrap_err();
            assert!(
                err.message().contains(&format!("`{key}`")),
                "{config:?}: {err}"
            );
        }
    }

    #[test]
    fn info_lists_every_key() {
        let info = Csv::info();
        assert_eq!(info.name, "csv");
        let names: Vec<&str> = info.config_keys.iter().map(|k| k.name.as_str()).collect();
        assert_eq!(names, ["columns", "delimiter", "infer_types"]);
        assert!(info.config_keys[0].required);
    }
}
