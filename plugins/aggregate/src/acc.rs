//! The running aggregate of one window and group, as kept in the state
//! store between records.
//!
//! Stored with postcard: compact and fast, because an aggregate is read and
//! written back for every record that lands in it.

use crate::spec::{Aggregation, Function};
use serde::{Deserialize, Serialize};
use sketches_ddsketch::{Config as SketchConfig, DDSketch};

/// One function's running value.
#[derive(Clone, Serialize, Deserialize)]
enum Slot {
    Count(u64),
    Sum(f64),
    Min(Option<f64>),
    Max(Option<f64>),
    Avg { sum: f64, n: u64 },
    Quantile(Box<DDSketch>),
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Slot::Count(n) => write!(f, "Count({n})"),
            Slot::Sum(s) => write!(f, "Sum({s})"),
            Slot::Min(m) => write!(f, "Min({m:?})"),
            Slot::Max(m) => write!(f, "Max({m:?})"),
            Slot::Avg { sum, n } => write!(f, "Avg({sum}/{n})"),
            Slot::Quantile(s) => write!(f, "Quantile({} values)", s.count()),
        }
    }
}

/// A window's aggregate for one group.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Acc {
    /// Records that went into it.
    records: u64,
    slots: Vec<Slot>,
}

/// Per record, what each aggregation reads: the condition's verdict or the
/// field's number (`None`: missing or not a number).
#[derive(Debug, Clone, Copy)]
pub enum Input {
    Matched(bool),
    Number(Option<f64>),
}

impl Acc {
    pub fn new(aggs: &[Aggregation]) -> Acc {
        let slots = aggs
            .iter()
            .map(|a| match &a.function {
                Function::Count(_) | Function::Ratio(_) => Slot::Count(0),
                Function::Sum(_) => Slot::Sum(0.0),
                Function::Min(_) => Slot::Min(None),
                Function::Max(_) => Slot::Max(None),
                Function::Avg(_) => Slot::Avg { sum: 0.0, n: 0 },
                Function::Quantile(..) => {
                    Slot::Quantile(Box::new(DDSketch::new(SketchConfig::defaults())))
                }
            })
            .collect();
        Acc { records: 0, slots }
    }

    pub fn decode(bytes: &[u8]) -> Result<Acc, String> {
        postcard::from_bytes(bytes).map_err(|e| format!("stored aggregate unreadable: {e}"))
    }

    pub fn encode(&self) -> Vec<u8> {
        // Encoding plain data into a Vec cannot fail.
        postcard::to_allocvec(self).unwrap_or_default()
    }

    /// Adds one record; `inputs[i]` is what aggregation `i` reads from it.
    pub fn add(&mut self, inputs: &[Input]) {
        self.records += 1;
        for (slot, input) in self.slots.iter_mut().zip(inputs) {
            match (slot, *input) {
                (Slot::Count(n), Input::Matched(m)) => *n += u64::from(m),
                (_, Input::Number(None)) | (_, Input::Matched(_)) => {}
                (Slot::Sum(s), Input::Number(Some(x))) => *s += x,
                (Slot::Min(m), Input::Number(Some(x))) => *m = Some(m.map_or(x, |m| m.min(x))),
                (Slot::Max(m), Input::Number(Some(x))) => *m = Some(m.map_or(x, |m| m.max(x))),
                (Slot::Avg { sum, n }, Input::Number(Some(x))) => {
                    *sum += x;
                    *n += 1;
                }
                (Slot::Quantile(sketch), Input::Number(Some(x))) => sketch.add(x),
                (Slot::Count(_), Input::Number(_)) => {}
            }
        }
    }

    /// The aggregations' values, in order; `null` where there was nothing to
    /// aggregate (the average of no numbers).
    pub fn results(&self, aggs: &[Aggregation]) -> Vec<serde_json::Value> {
        use serde_json::Value;
        let number = |x: f64| serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number);
        self.slots
            .iter()
            .zip(aggs)
            .map(|(slot, agg)| match (slot, &agg.function) {
                (Slot::Count(n), Function::Ratio(_)) if self.records > 0 => {
                    number(*n as f64 / self.records as f64)
                }
                (Slot::Count(n), Function::Count(_)) => Value::from(*n),
                (Slot::Sum(s), _) => number(*s),
                (Slot::Min(Some(m)) | Slot::Max(Some(m)), _) => number(*m),
                (Slot::Avg { sum, n }, _) if *n > 0 => number(sum / *n as f64),
                (Slot::Quantile(sketch), Function::Quantile(_, q)) => sketch
                    .quantile(*q)
                    .ok()
                    .flatten()
                    .map_or(Value::Null, number),
                _ => Value::Null,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::aggregations;
    use serde_json::json;

    #[test]
    fn every_function_over_a_few_records() {
        let aggs = aggregations(
            r#"{"n":"count()","errors":"count(status >= 500)","rate":"ratio(status >= 500)",
                "total":"sum(t)","lo":"min(t)","hi":"max(t)","mean":"avg(t)","median":"p50(t)"}"#,
        )
        .unwrap();
        let mut acc = Acc::new(&aggs);
        for (error, t) in [(true, Some(1.0)), (false, Some(3.0)), (false, None)] {
            let inputs: Vec<Input> = aggs
                .iter()
                .map(|a| match &a.function {
                    Function::Count(None) => Input::Matched(true),
                    Function::Count(_) | Function::Ratio(_) => Input::Matched(error),
                    _ => Input::Number(t),
                })
                .collect();
            acc.add(&inputs);
        }
        let acc = Acc::decode(&acc.encode()).unwrap();
        let r: std::collections::HashMap<&str, serde_json::Value> = aggs
            .iter()
            .map(|a| a.name.as_str())
            .zip(acc.results(&aggs))
            .collect();
        assert_eq!(r["n"], json!(3));
        assert_eq!(r["errors"], json!(1));
        assert_eq!(r["rate"], json!(1.0 / 3.0));
        assert_eq!(r["total"], json!(4.0));
        assert_eq!(r["lo"], json!(1.0));
        assert_eq!(r["hi"], json!(3.0));
        assert_eq!(r["mean"], json!(2.0));
        let median = r["median"].as_f64().unwrap();
        assert!((median - 1.0).abs() < 0.02, "{median}");
    }

    #[test]
    fn nothing_to_aggregate_is_null() {
        let aggs = aggregations(r#"{"mean":"avg(t)","lo":"min(t)","p":"p99(t)"}"#).unwrap();
        let mut acc = Acc::new(&aggs);
        acc.add(&[Input::Number(None); 3]);
        assert_eq!(acc.results(&aggs), [json!(null), json!(null), json!(null)]);
    }
}
