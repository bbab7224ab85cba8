//! A client certificate's subject as a user name: the subject in RFC 2253
//! form (what Java's `X500Principal.getName()` gives Kafka, e.g.
//! `CN=writer,OU=eng,O=acme,C=NO`), then Kafka's
//! `ssl.principal.mapping.rules` (KIP-371).

use regex::Regex;
use x509_parser::prelude::{FromDer, X509Certificate};

/// Why a certificate gives no user name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PrincipalError {
    #[error("the client certificate cannot be read: {0}")]
    Certificate(String),
    #[error("no ssl.principal.mapping.rules apply to {0}")]
    NoRuleApplies(String),
}

/// `ssl.principal.mapping.rules`, parsed: applied in order, the first that
/// matches the whole subject names the user.
#[derive(Debug, Clone)]
pub(crate) struct MappingRules(Vec<Rule>);

#[derive(Debug, Clone)]
enum Rule {
    /// `DEFAULT`: the subject as it is.
    Default,
    /// `RULE:pattern/replacement/[LU]`.
    Replace {
        pattern: Regex,
        replacement: String,
        case: Case,
    },
}

#[derive(Debug, Clone, Copy)]
enum Case {
    Keep,
    Lower,
    Upper,
}

impl MappingRules {
    /// Parses Kafka's syntax: comma-separated `DEFAULT` and
    /// `RULE:pattern/replacement/` rules, each optionally ending in `L`
    /// (lower-case the result) or `U` (upper-case); `/` inside a pattern
    /// or replacement is written `\/`.
    pub(crate) fn parse(text: &str) -> Result<MappingRules, String> {
        let mut rules = Vec::new();
        let mut rest = text.trim_start();
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("DEFAULT") {
                rules.push(Rule::Default);
                rest = after;
            } else if let Some(after) = rest.strip_prefix("RULE:") {
                let (pattern, after) =
                    until_slash(after).ok_or_else(|| format!("{rest}: no / after the pattern"))?;
                let (replacement, after) = until_slash(after)
                    .ok_or_else(|| format!("{rest}: no / after the replacement"))?;
                let (case, after) = match after.as_bytes().first() {
                    Some(b'L') => (Case::Lower, &after[1..]),
                    Some(b'U') => (Case::Upper, &after[1..]),
                    _ => (Case::Keep, after),
                };
                let anchored = format!("^(?:{pattern})$");
                let pattern = Regex::new(&anchored).map_err(|e| format!("{pattern}: {e}"))?;
                rules.push(Rule::Replace {
                    pattern,
                    replacement: java_replacement(replacement),
                    case,
                });
                rest = after;
            } else {
                return Err(format!(
                    "{rest}: expected DEFAULT or RULE:pattern/replacement/[LU]"
                ));
            }
            rest = rest.trim_start();
            match rest.strip_prefix(',') {
                Some(after) => rest = after.trim_start(),
                None if rest.is_empty() => {}
                None => return Err(format!("{rest}: expected a comma between rules")),
            }
        }
        if rules.is_empty() {
            rules.push(Rule::Default);
        }
        Ok(MappingRules(rules))
    }

    /// The user name of `subject`.
    pub(crate) fn apply(&self, subject: &str) -> Result<String, PrincipalError> {
        for rule in &self.0 {
            match rule {
                Rule::Default => return Ok(subject.to_owned()),
                Rule::Replace {
                    pattern,
                    replacement,
                    case,
                } => {
                    if !pattern.is_match(subject) {
                        continue;
                    }
                    let name = pattern.replace(subject, replacement.as_str());
                    return Ok(match case {
                        Case::Keep => name.into_owned(),
                        Case::Lower => name.to_lowercase(),
                        Case::Upper => name.to_uppercase(),
                    });
                }
            }
        }
        Err(PrincipalError::NoRuleApplies(subject.to_owned()))
    }
}

impl Default for MappingRules {
    fn default() -> Self {
        MappingRules(vec![Rule::Default])
    }
}

/// The text up to the first `/` not escaped by `\`, and what follows it.
fn until_slash(text: &str) -> Option<(&str, &str)> {
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            '/' if !escaped => return Some((&text[..i], &text[i + 1..])),
            _ => escaped = false,
        }
    }
    None
}

/// A Java `Matcher` replacement in the regex crate's syntax: `$1` becomes
/// `${1}` (the regex crate would read `$1abc` as a group named `1abc`),
/// `\x` is a literal `x`, and a literal `$` is `$$`.
fn java_replacement(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('$') => out.push_str("$$"),
                Some(other) => out.push(other),
                None => {}
            },
            '$' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                if digits.is_empty() {
                    out.push_str("$$");
                } else {
                    out.push_str(&format!("${{{digits}}}"));
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// The subject of the DER certificate `der`, in RFC 2253 form: its
/// relative names last to first, separated by `,`, attributes by their
/// short names (`CN`, `OU`, `O`, `L`, `ST`, `C`, `STREET`, `DC`, `UID`) or
/// dotted OIDs.
pub(crate) fn subject(der: &[u8]) -> Result<String, PrincipalError> {
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|e| PrincipalError::Certificate(e.to_string()))?;
    let rdns: Vec<String> = cert
        .subject()
        .iter_rdn()
        .map(|rdn| {
            rdn.iter()
                .map(|attr| {
                    let oid = attr.attr_type().to_id_string();
                    let name = match oid.as_str() {
                        "2.5.4.3" => "CN",
                        "2.5.4.6" => "C",
                        "2.5.4.7" => "L",
                        "2.5.4.8" => "ST",
                        "2.5.4.9" => "STREET",
                        "2.5.4.10" => "O",
                        "2.5.4.11" => "OU",
                        "0.9.2342.19200300.100.1.25" => "DC",
                        "0.9.2342.19200300.100.1.1" => "UID",
                        _ => oid.as_str(),
                    };
                    let value = match attr.as_str() {
                        Ok(text) => escape(text),
                        // Not a string type: `#` and the DER in hex.
                        Err(_) => {
                            let raw = attr.attr_value().data;
                            let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
                            format!("#{hex}")
                        }
                    };
                    format!("{name}={value}")
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    Ok(rdns.into_iter().rev().collect::<Vec<_>>().join(","))
}

/// RFC 2253's escaping of an attribute value.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(rules: &str, subject: &str) -> Result<String, PrincipalError> {
        MappingRules::parse(rules).unwrap().apply(subject)
    }

    /// Kafka's own examples (SslPrincipalMapperTest, the docs).
    #[test]
    fn kafka_rules() {
        let rules = "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,\
                     RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L,\
                     RULE:^cn=(.*?),ou=(.*?),dc=(.*?),dc=(.*?)$/$1@$2/U,\
                     RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/U,\
                     DEFAULT";
        assert_eq!(
            map(rules, "CN=Duke,OU=ServiceUsers,O=Org,C=US").unwrap(),
            "Duke"
        );
        assert_eq!(
            map(rules, "CN=Duke,OU=SME,O=mycp,L=Fulton,ST=MD,C=US").unwrap(),
            "duke@sme"
        );
        assert_eq!(
            map(rules, "cn=duke,ou=JavaSoft,dc=example,dc=com").unwrap(),
            "DUKE@JAVASOFT"
        );
        assert_eq!(map(rules, "OU=x,CN=Duke2").unwrap(), "DUKE2");
        assert_eq!(
            map(rules, "OU=JavaSoft,O=Sun").unwrap(),
            "OU=JavaSoft,O=Sun"
        );
        // Without DEFAULT, a subject no rule matches is refused.
        assert_eq!(
            map("RULE:^CN=(.*?),O=x$/$1/", "CN=a,O=y"),
            Err(PrincipalError::NoRuleApplies("CN=a,O=y".into()))
        );
        assert_eq!(map("", "CN=a").unwrap(), "CN=a");
        assert_eq!(map(" DEFAULT ", "CN=a").unwrap(), "CN=a");
    }

    #[test]
    fn escapes_and_replacements() {
        // `\/` in a pattern and a replacement; `$1` followed by letters.
        assert_eq!(
            map("RULE:^CN=(.*)\\/x$/$1abc\\/y/", "CN=a/x").unwrap(),
            "aabc/y"
        );
        assert_eq!(map("RULE:^CN=(.*)$/$$1/", "CN=a").unwrap(), "$a");
        for bad in [
            "RULE:^CN=(.*)$",
            "RULE:^CN=(.*)$/$1",
            "RULE:(/$1/",
            "SOMETHING",
            "DEFAULT RULE:a/b/",
        ] {
            assert!(MappingRules::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn subjects_in_rfc2253_form() {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::CountryName, "NO");
        dn.push(rcgen::DnType::OrganizationName, "acme, inc");
        dn.push(rcgen::DnType::OrganizationalUnitName, "eng");
        dn.push(rcgen::DnType::CommonName, "writer");
        params.distinguished_name = dn;
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(
            subject(cert.der()).unwrap(),
            "CN=writer,OU=eng,O=acme\\, inc,C=NO"
        );
        assert!(matches!(
            subject(b"not a certificate"),
            Err(PrincipalError::Certificate(_))
        ));
    }
}
