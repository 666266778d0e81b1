//! Subscriptions by regular expression (KIP-848's broker-side regex). A member's
//! `SubscribedTopicRegex` is matched against every topic's whole name, as Kafka's RE2J
//! `matches()` does (the `regex` crate's syntax is RE2's); internal topics never match. The
//! coordinator resolves each expression of a group once per metadata version and keeps the
//! result, so a heartbeat costs a scan of the topics only when they may have changed.

use std::collections::BTreeSet;

use super::heartbeat::TopicView;
use super::{ConsumerGroup, ConsumerMember};

/// The largest compiled expression accepted (bytes of the compiled program): a member cannot
/// make the coordinator build an automaton of unbounded size.
const SIZE_LIMIT: usize = 1 << 20;

/// Topics a regular expression never matches: Kafka's internal topics.
const INTERNAL: [&str; 3] = [
    "__consumer_offsets",
    "__transaction_state",
    "__share_group_state",
];

/// A compiled expression and what it matched at a metadata version.
#[derive(Debug, Clone)]
pub(super) struct Resolved {
    regex: regex::Regex,
    version: i64,
    topics: BTreeSet<String>,
}

/// Compiles `r` to match whole topic names.
pub(super) fn compile(r: &str) -> Result<regex::Regex, regex::Error> {
    regex::RegexBuilder::new(&format!("^(?:{r})$"))
        .size_limit(SIZE_LIMIT)
        .build()
}

impl ConsumerGroup {
    /// Resolves every regular expression the members use, dropping the ones nobody uses.
    pub(super) fn resolve_regexes(&mut self, topics: &dyn TopicView) {
        let used: BTreeSet<String> = self
            .members
            .values()
            .filter_map(|m| m.metadata.subscribed_topic_regex.clone())
            .filter(|r| !r.is_empty())
            .collect();
        self.resolved.retain(|r, _| used.contains(r));
        let version = topics.version();
        let mut names: Option<Vec<String>> = None;
        for r in used {
            if self.resolved.get(&r).is_some_and(|x| x.version == version) {
                continue;
            }
            let regex = match self.resolved.remove(&r) {
                Some(x) => x.regex,
                // Checked when the member sent it; a record from elsewhere may still be bad.
                None => match compile(&r) {
                    Ok(regex) => regex,
                    Err(_) => continue,
                },
            };
            let all = names.get_or_insert_with(|| topics.names());
            let matched = all
                .iter()
                .filter(|n| !INTERNAL.contains(&n.as_str()) && regex.is_match(n))
                .cloned()
                .collect();
            self.resolved.insert(
                r,
                Resolved {
                    regex,
                    version,
                    topics: matched,
                },
            );
        }
    }

    /// The topics member `m` subscribes to: its names, and what its expression matched.
    pub(super) fn member_topics<'a>(
        &'a self,
        m: &'a ConsumerMember,
    ) -> impl Iterator<Item = &'a String> + 'a {
        let by_regex = m
            .metadata
            .subscribed_topic_regex
            .as_ref()
            .and_then(|r| self.resolved.get(r))
            .map(|x| &x.topics);
        m.metadata
            .subscribed_topic_names
            .iter()
            .chain(by_regex.into_iter().flatten())
    }
}

#[cfg(test)]
mod tests {
    use super::compile;

    #[test]
    fn expressions_match_whole_names() {
        let r = compile("orders.*").expect("valid");
        assert!(r.is_match("orders-eu"));
        assert!(!r.is_match("old-orders"));
        let r = compile("(^a.*)|(^b.*)").expect("valid");
        assert!(r.is_match("a1") && r.is_match("b2") && !r.is_match("c3"));
        assert!(compile("(unclosed").is_err());
    }
}
