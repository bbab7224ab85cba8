//! What the configuration asks for: the window, the grouping and the
//! aggregations, parsed once at `init`.

use fjord_expr::Condition;
use std::time::Duration;

/// How records are assigned to windows, by event time in epoch ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// Fixed, non-overlapping windows `[k*size, (k+1)*size)`.
    Tumbling { size: i64 },
    /// Windows of `size` starting every `advance`; a record is in each one
    /// that covers its time.
    Hopping { size: i64, advance: i64 },
    /// One window per group that never closes.
    Global,
}

impl Window {
    /// The starts of the windows that contain `t`, latest first.
    pub fn starts(self, t: i64) -> Vec<i64> {
        match self {
            Window::Tumbling { size } => vec![t - t.rem_euclid(size)],
            Window::Hopping { size, advance } => {
                let mut start = t - t.rem_euclid(advance);
                let mut starts = Vec::with_capacity((size / advance + 1) as usize);
                while start > t - size {
                    starts.push(start);
                    start -= advance;
                }
                starts
            }
            Window::Global => vec![0],
        }
    }

    /// The window length; `None` for the global window.
    pub fn size(self) -> Option<i64> {
        match self {
            Window::Tumbling { size } | Window::Hopping { size, .. } => Some(size),
            Window::Global => None,
        }
    }
}

/// A field the aggregations and the grouping read.
pub type Field = fjord_expr::Path;

/// One aggregation function.
#[derive(Debug, Clone)]
pub enum Function {
    /// Records in the window, or those matching a condition.
    Count(Option<Condition>),
    /// The share of records matching a condition, 0 to 1.
    Ratio(Condition),
    Sum(Field),
    Min(Field),
    Max(Field),
    Avg(Field),
    /// The `q` quantile (0 < q ≤ 1) of a field, from a sketch with 1 %
    /// relative error.
    Quantile(Field, f64),
}

impl Function {
    /// Parses `count()`, `count(EXPR)`, `ratio(EXPR)`, `sum(FIELD)`,
    /// `min(FIELD)`, `max(FIELD)`, `avg(FIELD)`, `p50(FIELD)` … `p999(FIELD)`
    /// and `percentile(FIELD, Q)`.
    pub fn parse(text: &str) -> Result<Function, String> {
        let text = text.trim();
        let (name, rest) = text
            .split_once('(')
            .ok_or_else(|| format!("{text:?}: expected FUNCTION(ARGUMENT), e.g. sum(bytes)"))?;
        let arg = rest
            .strip_suffix(')')
            .ok_or_else(|| format!("{text:?}: missing the closing parenthesis"))?
            .trim();
        let condition = |arg: &str| {
            Condition::parse(arg).map_err(|e| format!("{text:?}: not a condition: {e}"))
        };
        let field = |arg: &str| Field::parse(arg).map_err(|e| format!("{text:?}: {e}"));
        Ok(match name.trim() {
            "count" if arg.is_empty() => Function::Count(None),
            "count" => Function::Count(Some(condition(arg)?)),
            "ratio" => Function::Ratio(condition(arg)?),
            "sum" => Function::Sum(field(arg)?),
            "min" => Function::Min(field(arg)?),
            "max" => Function::Max(field(arg)?),
            "avg" => Function::Avg(field(arg)?),
            "percentile" => {
                let (f, q) = arg
                    .rsplit_once(',')
                    .ok_or_else(|| format!("{text:?}: expected percentile(FIELD, Q)"))?;
                let q: f64 = q
                    .trim()
                    .parse()
                    .map_err(|_| format!("{text:?}: {:?} is not a number", q.trim()))?;
                if !(q > 0.0 && q <= 1.0) {
                    return Err(format!("{text:?}: Q must be above 0 and at most 1"));
                }
                Function::Quantile(field(f)?, q)
            }
            p if p.starts_with('p')
                && p.len() > 1
                && p[1..].bytes().all(|b| b.is_ascii_digit()) =>
            {
                // p50 → 0.50, p99 → 0.99, p999 → 0.999: the digits after "0.".
                let q: f64 = format!("0.{}", &p[1..])
                    .parse()
                    .map_err(|_| text.to_owned())?;
                if q <= 0.0 {
                    return Err(format!("{text:?}: not a percentile"));
                }
                Function::Quantile(field(arg)?, q)
            }
            other => {
                return Err(format!(
                    "{text:?}: unknown function {other:?} (count, ratio, sum, min, max, avg, p50, p90, p95, p99, p999, percentile)"
                ));
            }
        })
    }

    /// The numeric field the function reads, if it reads one.
    pub fn field(&self) -> Option<&Field> {
        match self {
            Function::Sum(f)
            | Function::Min(f)
            | Function::Max(f)
            | Function::Avg(f)
            | Function::Quantile(f, _) => Some(f),
            Function::Count(_) | Function::Ratio(_) => None,
        }
    }
}

/// An output field and the function that computes it.
#[derive(Debug, Clone)]
pub struct Aggregation {
    pub name: String,
    pub function: Function,
}

/// Parses the `aggregations` config: a JSON object of name → function (what
/// a YAML mapping in the manifest becomes), or `name=function` pairs
/// separated by `;`.
pub fn aggregations(text: &str) -> Result<Vec<Aggregation>, String> {
    let pairs: Vec<(String, String)> = if text.trim_start().starts_with('{') {
        let object: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(text).map_err(|e| format!("not a mapping: {e}"))?;
        object
            .into_iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => Ok((k, s)),
                other => Err(format!("{k}: {other} is not a function such as count()")),
            })
            .collect::<Result<_, _>>()?
    } else {
        text.split(';')
            .filter(|p| !p.trim().is_empty())
            .map(|p| {
                p.split_once('=')
                    .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                    .ok_or_else(|| format!("{p:?}: expected NAME=FUNCTION"))
            })
            .collect::<Result<_, _>>()?
    };
    if pairs.is_empty() {
        return Err("no aggregations".into());
    }
    pairs
        .into_iter()
        .map(|(name, f)| {
            Ok(Aggregation {
                function: Function::parse(&f).map_err(|e| format!("{name}: {e}"))?,
                name,
            })
        })
        .collect()
}

/// Parses a duration such as `60s`, `1m`, `500ms` or `1h 30m` into ms.
pub fn duration_ms(text: &str) -> Result<i64, String> {
    let d: Duration = humantime::parse_duration(text.trim())
        .map_err(|e| format!("{text:?} is not a duration such as 60s or 5m: {e}"))?;
    i64::try_from(d.as_millis()).map_err(|_| format!("{text:?} is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_containing_a_time() {
        let t = Window::Tumbling { size: 60_000 };
        assert_eq!(t.starts(125_000), [120_000]);
        assert_eq!(t.starts(-1), [-60_000]);
        let h = Window::Hopping {
            size: 60_000,
            advance: 20_000,
        };
        assert_eq!(h.starts(125_000), [120_000, 100_000, 80_000]);
        assert_eq!(h.starts(120_000), [120_000, 100_000, 80_000]);
        assert_eq!(Window::Global.starts(5), [0]);
    }

    #[test]
    fn functions_parse_and_bad_ones_say_why() {
        assert!(matches!(
            Function::parse("count()").unwrap(),
            Function::Count(None)
        ));
        assert!(matches!(
            Function::parse("count(status >= 500)").unwrap(),
            Function::Count(Some(_))
        ));
        assert!(matches!(
            Function::parse(" p99(request_time) ").unwrap(),
            Function::Quantile(f, q) if f.name() == "request_time" && q == 0.99
        ));
        assert!(matches!(
            Function::parse("p999(t)").unwrap(),
            Function::Quantile(_, q) if q == 0.999
        ));
        assert!(matches!(
            Function::parse("percentile(http.time, 0.75)").unwrap(),
            Function::Quantile(f, q) if f.name() == "http.time" && q == 0.75
        ));
        let err = |t| Function::parse(t).unwrap_err();
        assert!(err("median(x)").contains("unknown function \"median\""));
        assert!(err("sum(a b)").contains("not a field name"));
        assert!(err("sum").contains("expected FUNCTION(ARGUMENT)"));
        assert!(err("ratio(status >=)").contains("not a condition"));
        assert!(err("percentile(x, 2)").contains("at most 1"));
    }

    #[test]
    fn aggregation_lists_in_both_shapes() {
        let a = aggregations(r#"{"requests":"count()","p99":"p99(t)"}"#).unwrap();
        assert_eq!(a.len(), 2);
        let b = aggregations("requests=count(); total = sum(bytes)").unwrap();
        assert_eq!(b[1].name, "total");
        assert!(aggregations("{}").unwrap_err().contains("no aggregations"));
        assert!(
            aggregations(r#"{"n":3}"#)
                .unwrap_err()
                .contains("not a function")
        );
    }

    #[test]
    fn durations() {
        assert_eq!(duration_ms("1m").unwrap(), 60_000);
        assert_eq!(duration_ms("500ms").unwrap(), 500);
        assert!(duration_ms("soon").is_err());
    }
}
