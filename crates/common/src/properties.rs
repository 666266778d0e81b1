//! Kafka's `server.properties` files: the Java properties text format (`key=value` or `key:value`
//! or `key value`, `#`/`!` comments, `\` line continuations, `\` escapes). Parsing only; reading
//! the file is the caller's business.

use std::collections::BTreeMap;

/// Parses properties text into a sorted map (a later key replaces an earlier one).
pub fn parse_properties(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut logical = String::new();
    for raw in text.lines() {
        // Leading white space is dropped on first and continuation lines alike (Java's rule).
        let line = raw.trim_start();
        if logical.is_empty() && (line.is_empty() || line.starts_with('#') || line.starts_with('!'))
        {
            continue;
        }
        let continued = ends_with_odd_backslashes(line);
        if continued {
            logical.push_str(&line[..line.len() - 1]);
            continue;
        }
        logical.push_str(line);
        let (k, v) = split_key_value(&logical);
        out.insert(unescape(k), unescape(v));
        logical.clear();
    }
    if !logical.is_empty() {
        let (k, v) = split_key_value(&logical);
        out.insert(unescape(k), unescape(v));
    }
    out
}

fn ends_with_odd_backslashes(line: &str) -> bool {
    line.bytes().rev().take_while(|b| *b == b'\\').count() % 2 == 1
}

fn split_key_value(line: &str) -> (&str, &str) {
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'=' | b':' | b' ' | b'\t' => break,
            _ => i += 1,
        }
    }
    let key = &line[..i.min(line.len())];
    let mut rest = line[i.min(line.len())..].trim_start_matches([' ', '\t']);
    if let Some(r) = rest.strip_prefix(['=', ':']) {
        rest = r.trim_start_matches([' ', '\t']);
    }
    (key, rest)
}

fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('f') => out.push('\u{c}'),
            Some('u') => {
                let hex: String = chars.by_ref().take(4).collect();
                if let Some(ch) = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    out.push(ch);
                }
            }
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kafka_server_properties() {
        let text = "# comment\n! also comment\nnode.id=1\nprocess.roles = broker,controller\n\
                    listeners:PLAINTEXT://:9092\nlog.dirs /tmp/a,\\\n   /tmp/b\nescaped\\=key=x\\ty\n\n";
        let p = parse_properties(text);
        assert_eq!(p["node.id"], "1");
        assert_eq!(p["process.roles"], "broker,controller");
        assert_eq!(p["listeners"], "PLAINTEXT://:9092");
        assert_eq!(p["log.dirs"], "/tmp/a,/tmp/b");
        assert_eq!(p["escaped=key"], "x\ty");
        assert_eq!(p.len(), 5);
    }
}
