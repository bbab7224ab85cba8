//! Records as JSON Lines: what `fjord plugin test --input FILE.jsonl` reads
//! and prints, and what the `stdout` sink writes with `format: json`.

use crate::{Error, Record};

/// Reads records from JSON Lines, one record per line: either a JSON object
/// with any of `key`, `value`, `headers` (object of strings), `timestamp`,
/// `topic` — where `value` that is not a string is stored as its JSON text —
/// or any other JSON value, which becomes the record's value.
///
/// `fjord plugin test --input FILE.jsonl` reads this format.
pub fn records_from_jsonl(text: &str) -> Result<Vec<Record>, Error> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| Error::msg(format!("line {}: {e}", i + 1)))?;
        out.push(record_from_json(&v).map_err(|e| Error::msg(format!("line {}: {e}", i + 1)))?);
    }
    Ok(out)
}

fn text_of(v: &serde_json::Value) -> Option<Vec<u8>> {
    match v {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone().into_bytes()),
        other => Some(other.to_string().into_bytes()),
    }
}

fn record_from_json(v: &serde_json::Value) -> Result<Record, Error> {
    let serde_json::Value::Object(m) = v else {
        return Ok(Record {
            value: text_of(v),
            ..Record::default()
        });
    };
    const FIELDS: [&str; 5] = ["key", "value", "headers", "timestamp", "topic"];
    if !m.keys().all(|k| FIELDS.contains(&k.as_str())) {
        // An ordinary JSON object: the whole object is the value.
        return Ok(Record {
            value: Some(v.to_string().into_bytes()),
            ..Record::default()
        });
    }
    let mut r = Record {
        key: m.get("key").and_then(text_of),
        value: m.get("value").and_then(text_of),
        ..Record::default()
    };
    if let Some(ts) = m.get("timestamp") {
        r.timestamp = ts
            .as_i64()
            .ok_or_else(|| Error::msg("`timestamp` must be an integer (ms)"))?;
    }
    if let Some(t) = m.get("topic") {
        r.topic = Some(
            t.as_str()
                .ok_or_else(|| Error::msg("`topic` must be a string"))?
                .to_owned(),
        );
    }
    if let Some(h) = m.get("headers") {
        let h = h
            .as_object()
            .ok_or_else(|| Error::msg("`headers` must be an object"))?;
        for (name, value) in h {
            r.headers.push(crate::Header {
                name: name.clone(),
                value: text_of(value),
            });
        }
    }
    Ok(r)
}

/// A record as one JSON line: the inverse of [`records_from_jsonl`], with
/// `value` kept as JSON when it is JSON.
pub fn record_to_json(r: &Record) -> serde_json::Value {
    let text = |b: &Option<Vec<u8>>| match b {
        None => serde_json::Value::Null,
        Some(b) => serde_json::Value::String(String::from_utf8_lossy(b).into_owned()),
    };
    let value = match r
        .value
        .as_deref()
        .map(serde_json::from_slice::<serde_json::Value>)
    {
        Some(Ok(v)) => v,
        _ => text(&r.value),
    };
    let mut m = serde_json::Map::new();
    m.insert("key".into(), text(&r.key));
    m.insert("value".into(), value);
    if !r.headers.is_empty() {
        let h = r
            .headers
            .iter()
            .map(|h| (h.name.clone(), text(&h.value)))
            .collect();
        m.insert("headers".into(), serde_json::Value::Object(h));
    }
    m.insert("timestamp".into(), r.timestamp.into());
    if let Some(t) = &r.topic {
        m.insert("topic".into(), t.clone().into());
    }
    serde_json::Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonl_records_and_plain_values() {
        let recs = records_from_jsonl(
            "{\"key\":\"k\",\"value\":{\"a\":1},\"headers\":{\"h\":\"v\"},\"timestamp\":5}\n\n{\"level\":\"error\"}\n\"text\"\n",
        )
        .unwrap();
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[0].key.as_deref(), Some(&b"k"[..]));
        assert_eq!(recs[0].value_str(), Some("{\"a\":1}"));
        assert_eq!(recs[0].timestamp, 5);
        assert_eq!(recs[1].value_str(), Some("{\"level\":\"error\"}"));
        assert_eq!(recs[2].value_str(), Some("text"));
        let err = records_from_jsonl("{}\n{oops").unwrap_err();
        assert!(err.message().starts_with("line 2"), "{err}");
    }
}
