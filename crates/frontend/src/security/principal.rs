//! The principal of a TLS client: its certificate's distinguished name in RFC 2253 form (what
//! Java's `X500Principal.getName()` gives Kafka), mapped by `ssl.principal.mapping.rules`.

use regex::Regex;
use x509_parser::der_parser::asn1_rs::{Any, Tag, ToDer};
use x509_parser::prelude::{FromDer, X509Certificate, X509Name};

/// The subject of a DER certificate, in RFC 2253 form: the last RDN first, attributes as
/// `CN=value` with RFC 2253's escapes, unknown attribute types as `OID=#hex`.
pub fn subject_dn(der: &[u8]) -> Result<String, String> {
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|e| format!("unreadable client certificate: {e}"))?;
    Ok(rfc2253(cert.subject()))
}

fn rfc2253(name: &X509Name<'_>) -> String {
    let rdns: Vec<String> = name
        .iter()
        .map(|rdn| {
            rdn.iter()
                .map(|atv| {
                    let oid = atv.attr_type().to_id_string();
                    let key = match oid.as_str() {
                        "2.5.4.3" => Some("CN"),
                        "2.5.4.6" => Some("C"),
                        "2.5.4.7" => Some("L"),
                        "2.5.4.8" => Some("ST"),
                        "2.5.4.9" => Some("STREET"),
                        "2.5.4.10" => Some("O"),
                        "2.5.4.11" => Some("OU"),
                        "0.9.2342.19200300.100.1.25" => Some("DC"),
                        "0.9.2342.19200300.100.1.1" => Some("UID"),
                        _ => None,
                    };
                    let value = atv.attr_value();
                    match (key, string_value(value)) {
                        (Some(k), Some(v)) => format!("{k}={}", escape(&v)),
                        _ => {
                            let hex: String = value
                                .to_der_vec()
                                .unwrap_or_default()
                                .iter()
                                .map(|b| format!("{b:02x}"))
                                .collect();
                            format!("{oid}=#{hex}")
                        }
                    }
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect();
    rdns.into_iter().rev().collect::<Vec<_>>().join(",")
}

fn string_value(value: &Any<'_>) -> Option<String> {
    match value.tag() {
        Tag::Utf8String
        | Tag::PrintableString
        | Tag::Ia5String
        | Tag::TeletexString
        | Tag::VisibleString => std::str::from_utf8(value.data).ok().map(str::to_string),
        Tag::BmpString => {
            let units: Vec<u16> = value
                .data
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        _ => None,
    }
}

/// RFC 2253 section 2.4 escapes.
fn escape(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let last = v.chars().count().saturating_sub(1);
    for (i, c) in v.chars().enumerate() {
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

/// One rule of `ssl.principal.mapping.rules`.
#[derive(Debug, Clone)]
enum Rule {
    /// The whole distinguished name.
    Default,
    /// `RULE:pattern/replacement/[LU]`: if the DN matches the pattern as a whole, the
    /// replacement (with `$1`-style groups), lower- or upper-cased.
    Replace {
        pattern: Regex,
        replacement: String,
        case: Option<char>,
    },
}

/// `ssl.principal.mapping.rules` (Kafka's default: `DEFAULT`): the first rule whose pattern
/// matches the DN gives the principal name; a DN no rule matches cannot authenticate.
#[derive(Debug, Clone)]
pub struct SslPrincipalMapper {
    rules: Vec<Rule>,
}

impl Default for SslPrincipalMapper {
    fn default() -> Self {
        Self {
            rules: vec![Rule::Default],
        }
    }
}

impl SslPrincipalMapper {
    /// Parses the rules: a comma-separated list of `DEFAULT` and
    /// `RULE:pattern/replacement/[LU]` (a `/` inside pattern or replacement is written `\/`).
    pub fn parse(rules: &str) -> Result<Self, String> {
        let mut out = Vec::new();
        let mut rest = rules.trim();
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix("DEFAULT") {
                out.push(Rule::Default);
                rest = r;
            } else if let Some(r) = rest.strip_prefix("RULE:") {
                let (pattern, r) =
                    until_slash(r).ok_or_else(|| format!("rule {rest:?} has no replacement"))?;
                let (replacement, r) =
                    until_slash(r).ok_or_else(|| format!("rule {rest:?} does not end with /"))?;
                let (case, r) = match r.chars().next() {
                    Some(c @ ('L' | 'U')) => (Some(c), &r[1..]),
                    _ => (None, r),
                };
                let pattern = Regex::new(&format!("^(?:{pattern})$"))
                    .map_err(|e| format!("bad pattern {pattern:?}: {e}"))?;
                out.push(Rule::Replace {
                    pattern,
                    replacement: java_replacement(&replacement),
                    case,
                });
                rest = r;
            } else {
                return Err(format!(
                    "invalid rule {rest:?} (each rule is DEFAULT or RULE:pattern/replacement/[LU])"
                ));
            }
            rest = rest.trim_start();
            match rest.strip_prefix(',') {
                Some(r) => rest = r.trim_start(),
                None if rest.is_empty() => {}
                None => return Err(format!("expected a comma before {rest:?}")),
            }
        }
        if out.is_empty() {
            return Err("no rules".into());
        }
        Ok(Self { rules: out })
    }

    /// The principal name of a distinguished name, or `None` if no rule matches.
    pub fn name(&self, dn: &str) -> Option<String> {
        for rule in &self.rules {
            match rule {
                Rule::Default => return Some(dn.to_string()),
                Rule::Replace {
                    pattern,
                    replacement,
                    case,
                } => {
                    if pattern.is_match(dn) {
                        let name = pattern.replace_all(dn, replacement.as_str()).into_owned();
                        return Some(match case {
                            Some('L') => name.to_lowercase(),
                            Some('U') => name.to_uppercase(),
                            _ => name,
                        });
                    }
                }
            }
        }
        None
    }
}

/// Up to the next unescaped `/`, with `\/` unescaped; and what follows it.
fn until_slash(s: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' if s[i + 1..].starts_with('/') => {
                out.push('/');
                chars.next();
            }
            '/' => return Some((out, &s[i + 1..])),
            c => out.push(c),
        }
    }
    None
}

/// Java's `$1` group references as the regex crate's `${1}` (so `$1x` stays group 1).
fn java_replacement(r: &str) -> String {
    let mut out = String::new();
    let mut chars = r.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '$' if chars.peek().is_some_and(|d| d.is_ascii_digit()) => {
                let d = chars.next().unwrap_or('0');
                out.push_str(&format!("${{{d}}}"));
            }
            '$' => out.push_str("$$"),
            '\\' => {
                if let Some(n) = chars.next() {
                    if n == '$' {
                        out.push_str("$$");
                    } else {
                        out.push(n);
                    }
                }
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafkas_documented_rules_map_names() {
        // The examples of Kafka's security documentation.
        let m = SslPrincipalMapper::parse(
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L,RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/L,DEFAULT",
        )
        .expect("must work");
        assert_eq!(
            m.name("CN=serviceuser,OU=ServiceUsers,O=Unknown,L=Unknown,ST=Unknown,C=Unknown")
                .as_deref(),
            Some("serviceuser")
        );
        assert_eq!(
            m.name("CN=adminUser,OU=Admin,O=Unknown,L=Unknown,ST=Unknown,C=Unknown")
                .as_deref(),
            Some("adminuser@admin")
        );
        assert_eq!(m.name("cn=Bob,O=x").as_deref(), Some("bob"));
        assert_eq!(m.name("O=nobody").as_deref(), Some("O=nobody"));
        let strict = SslPrincipalMapper::parse("RULE:^CN=([a-z]+)$/$1/U").expect("must work");
        assert_eq!(strict.name("CN=abc").as_deref(), Some("ABC"));
        assert_eq!(strict.name("CN=abc,O=x"), None);
        assert_eq!(
            SslPrincipalMapper::default().name("CN=a").as_deref(),
            Some("CN=a")
        );
        let slash = SslPrincipalMapper::parse(r"RULE:^CN=(.*)$/u\/$1/").expect("must work");
        assert_eq!(slash.name("CN=x").as_deref(), Some("u/x"));
    }

    #[test]
    fn bad_rules_are_refused() {
        for bad in [
            "",
            "RULE:abc",
            "RULE:a/b",
            "NOPE",
            "DEFAULT RULE:a/b/",
            "RULE:(/x/",
        ] {
            assert!(SslPrincipalMapper::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn escapes_follow_rfc_2253() {
        assert_eq!(escape("a,b"), "a\\,b");
        assert_eq!(escape(" #x "), "\\ #x\\ ");
        assert_eq!(escape("#a"), "\\#a");
    }
}
