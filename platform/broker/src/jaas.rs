//! Kafka's JAAS login lines (`…sasl.jaas.config`), as far as Fjord reads
//! them: `<LoginModule class> required key="value" …;`. Kafka users write
//! them for the controller quorum's login (`tls::controller_login`) and for
//! OAUTHBEARER's JWKS client (`oauth`); the values mean what they mean
//! there. It is for the syntax only; not for Java's JAAS files or for
//! several modules in one line.

use std::collections::BTreeMap;

/// The options of `line`, which must name `module` as `required`: values
/// in double quotes, `\` escaping the next character, the line ended by
/// `;`. An option given twice is refused.
pub(crate) fn options(line: &str, module: &str) -> Result<BTreeMap<String, String>, String> {
    let expected = || format!("expected {module} required key=\"value\" …;");
    let line = line.trim();
    let rest = line.strip_prefix(module).ok_or_else(expected)?;
    let rest = rest
        .trim_start()
        .strip_prefix("required")
        .ok_or("the login module must be `required`")?;
    let mut rest = rest
        .trim_end()
        .strip_suffix(';')
        .ok_or("the line ends with `;`")?;
    let mut options = BTreeMap::new();
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            return Ok(options);
        }
        let (key, after) = rest.split_once('=').ok_or_else(expected)?;
        let key = key.trim();
        if key.is_empty() || key.contains(char::is_whitespace) {
            return Err(expected());
        }
        let after = after
            .trim_start()
            .strip_prefix('"')
            .ok_or("values are written in double quotes")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, c)) => value.push(c),
                    None => return Err("a value without its closing quote".to_owned()),
                },
                Some((i, '"')) => break i + 1,
                Some((_, c)) => value.push(c),
                None => return Err("a value without its closing quote".to_owned()),
            }
        };
        if options.insert(key.to_owned(), value).is_some() {
            return Err(format!("{key} is given twice"));
        }
        rest = &after[end..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: &str = "org.example.Module";

    #[test]
    fn kafka_lines_parse() {
        let o = options(
            "org.example.Module required\n  username=\"a\" password=\"p\\\"w;\"\n  ssl.truststore.type=\"PEM\";",
            M,
        )
        .unwrap();
        assert_eq!(o["username"], "a");
        assert_eq!(o["password"], "p\"w;");
        assert_eq!(o["ssl.truststore.type"], "PEM");
        assert!(options(&format!("{M} required;"), M).unwrap().is_empty());
        for bad in [
            "org.other.Module required a=\"b\";".to_owned(),
            format!("{M} optional a=\"b\";"),
            format!("{M} required a=\"b\""),
            format!("{M} required a=b;"),
            format!("{M} required a=\"b;"),
            format!("{M} required a=\"b\" a=\"c\";"),
            format!("{M} required =\"b\";"),
        ] {
            assert!(options(&bad, M).is_err(), "{bad}");
        }
    }
}
