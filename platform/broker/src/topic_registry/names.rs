//! Topic names: Kafka's rule for a legal name, and for two names that
//! collide. Not for where a topic's files go (the registry's layout).

use kafka_protocol::ResponseError;

use super::ApiError;

/// Kafka's topic name rule: 1–249 characters of `[a-zA-Z0-9._-]`, and not
/// `.` or `..`.
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("topic name is empty".to_string());
    }
    if name == "." || name == ".." {
        return Err(format!("topic name cannot be {name:?}"));
    }
    if name.len() > 249 {
        return Err(format!(
            "topic name is {} characters long, the limit is 249",
            name.len()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "topic name {name:?} contains {c:?}; only ASCII letters, digits, '.', '_' and '-' are allowed"
        ));
    }
    Ok(())
}

/// Whether `a` and `b` are different names that are equal once `.` and
/// `_` count as one character. Kafka refuses such a pair because its
/// metric names replace `.` with `_`, and clients' do too: two such
/// topics would share their metrics.
pub(crate) fn collide(a: &str, b: &str) -> bool {
    let same = |x: u8, y: u8| x == y || (matches!(x, b'.' | b'_') && matches!(y, b'.' | b'_'));
    a != b && a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| same(x, y))
}

/// INVALID_TOPIC_EXCEPTION naming the topic of `existing` that `name`
/// collides with, in Kafka's words; `Ok` when none does.
pub(crate) fn check_collision<'a>(
    name: &str,
    existing: impl IntoIterator<Item = &'a str>,
) -> Result<(), ApiError> {
    match existing.into_iter().find(|other| collide(name, other)) {
        Some(other) => Err(ApiError::new(
            ResponseError::InvalidTopicException,
            format!(
                "Topic '{name}' collides with existing topic: {other} ('.' and '_' are the same in metric names)"
            ),
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert!(validate_topic_name("orders.v1_x-2").is_ok());
        assert!(validate_topic_name("").is_err());
        assert!(validate_topic_name(".").is_err());
        assert!(validate_topic_name("..").is_err());
        assert!(validate_topic_name("a/b").is_err());
        assert!(validate_topic_name(&"x".repeat(249)).is_ok());
        assert!(validate_topic_name(&"x".repeat(250)).is_err());
    }

    #[test]
    fn names_collide_when_dots_and_underscores_are_equal() {
        assert!(collide("coll.a.b", "coll_a_b"));
        assert!(collide("coll.a_b", "coll_a.b"));
        assert!(!collide("coll.a.b", "coll.a.b"));
        assert!(!collide("coll.a.b", "coll-a-b"));
        assert!(!collide("coll.a.b", "coll_a_bc"));
        let refused = check_collision("coll_a_b", ["other", "coll.a.b"]);
        assert!(refused.is_err_and(|e| e.message.contains("coll.a.b")
            && e.code == ResponseError::InvalidTopicException.code()));
        assert!(check_collision("coll_a_b", ["coll_a_b", "x"]).is_ok());
    }
}
