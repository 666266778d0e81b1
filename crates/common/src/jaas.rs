//! Kafka's `sasl.jaas.config` values: `LoginModuleClass flag key="value" ...;`, one entry or
//! several.

/// One login module entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JaasEntry {
    /// The login module's class name.
    pub login_module: String,
    /// `required`, `requisite`, `sufficient` or `optional`.
    pub flag: String,
    /// The options, in order.
    pub options: Vec<(String, String)>,
}

/// Parses a JAAS config value.
pub fn parse(text: &str) -> Result<Vec<JaasEntry>, String> {
    let tokens = tokenize(text)?;
    let mut entries = Vec::new();
    let mut it = tokens.into_iter().peekable();
    while let Some(t) = it.next() {
        let Token::Word(login_module) = t else {
            return Err("expected a login module class name".into());
        };
        let flag = match it.next() {
            Some(Token::Word(f))
                if ["required", "requisite", "sufficient", "optional"]
                    .contains(&f.to_ascii_lowercase().as_str()) =>
            {
                f.to_ascii_lowercase()
            }
            _ => {
                return Err(format!(
                    "{login_module}: expected a control flag (required, requisite, sufficient or optional)"
                ))
            }
        };
        let mut options = Vec::new();
        loop {
            match it.next() {
                Some(Token::Semicolon) => break,
                Some(Token::Word(key)) => {
                    if it.next() != Some(Token::Equals) {
                        return Err(format!("{login_module}: option {key} has no '='"));
                    }
                    match it.next() {
                        Some(Token::Word(v)) | Some(Token::Quoted(v)) => options.push((key, v)),
                        _ => return Err(format!("{login_module}: option {key} has no value")),
                    }
                }
                _ => return Err(format!("{login_module}: the entry must end with ';'")),
            }
        }
        entries.push(JaasEntry {
            login_module,
            flag,
            options,
        });
    }
    if entries.is_empty() {
        return Err("no login module entry".into());
    }
    Ok(entries)
}

#[derive(Debug, PartialEq, Eq)]
enum Token {
    Word(String),
    Quoted(String),
    Equals,
    Semicolon,
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '=' => {
                chars.next();
                out.push(Token::Equals);
            }
            ';' => {
                chars.next();
                out.push(Token::Semicolon);
            }
            '"' | '\'' => {
                let quote = c;
                chars.next();
                let mut v = String::new();
                loop {
                    match chars.next() {
                        None => return Err("unterminated quoted value".into()),
                        Some('\\') => match chars.next() {
                            Some(e) => v.push(e),
                            None => return Err("unterminated quoted value".into()),
                        },
                        Some(q) if q == quote => break,
                        Some(ch) => v.push(ch),
                    }
                }
                out.push(Token::Quoted(v));
            }
            _ => {
                let mut w = String::new();
                while let Some(&ch) = chars.peek() {
                    if ch.is_whitespace() || matches!(ch, '=' | ';' | '"' | '\'') {
                        break;
                    }
                    w.push(ch);
                    chars.next();
                }
                out.push(Token::Word(w));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafkas_plain_example_parses() {
        let e = parse(
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required
               username="admin" password="admin-secret" user_admin="admin-secret" user_alice="alice\"s";"#,
        )
        .expect("must work");
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].flag, "required");
        assert_eq!(e[0].options[3], ("user_alice".into(), "alice\"s".into()));
    }

    #[test]
    fn malformed_configs_are_errors() {
        for bad in [
            "",
            "Module",
            "Module required",
            "Module maybe;",
            "Module required a=\"x\"",
            "Module required a;",
            "Module required a=\"x;",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }
}
