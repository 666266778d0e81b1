//! Kafka's group configs (KIP-848, KIP-932): settings of one consumer or share group, set with
//! IncrementalAlterConfigs on a GROUP resource (`kafka-configs --entity-type groups`), each
//! overriding the broker's `group.` setting of the same name for that group.
//!
//! The controller checks names and forms; a broker checks the timeouts against its own bounds
//! (`group.consumer.min.session.timeout.ms` and the like) before it forwards a change.

/// `consumer.session.timeout.ms`: a consumer-protocol member's session.
pub const CONSUMER_SESSION_TIMEOUT_MS: &str = "consumer.session.timeout.ms";
/// `consumer.heartbeat.interval.ms`.
pub const CONSUMER_HEARTBEAT_INTERVAL_MS: &str = "consumer.heartbeat.interval.ms";
/// `share.session.timeout.ms`: a share group member's session.
pub const SHARE_SESSION_TIMEOUT_MS: &str = "share.session.timeout.ms";
/// `share.heartbeat.interval.ms`.
pub const SHARE_HEARTBEAT_INTERVAL_MS: &str = "share.heartbeat.interval.ms";
/// `share.record.lock.duration.ms`: how long an acquired record stays its member's.
pub const SHARE_RECORD_LOCK_DURATION_MS: &str = "share.record.lock.duration.ms";
/// `share.auto.offset.reset`: where a share group starts on a partition.
pub const SHARE_AUTO_OFFSET_RESET: &str = "share.auto.offset.reset";
/// `share.isolation.level`.
pub const SHARE_ISOLATION_LEVEL: &str = "share.isolation.level";

/// Every group config, with its value when none is set and the broker setting it overrides
/// (its default comes from there; `None`: a fixed default).
pub const GROUP_CONFIGS: &[(&str, Option<&str>)] = &[
    (
        CONSUMER_SESSION_TIMEOUT_MS,
        Some("group.consumer.session.timeout.ms"),
    ),
    (
        CONSUMER_HEARTBEAT_INTERVAL_MS,
        Some("group.consumer.heartbeat.interval.ms"),
    ),
    (
        SHARE_SESSION_TIMEOUT_MS,
        Some("group.share.session.timeout.ms"),
    ),
    (
        SHARE_HEARTBEAT_INTERVAL_MS,
        Some("group.share.heartbeat.interval.ms"),
    ),
    (
        SHARE_RECORD_LOCK_DURATION_MS,
        Some("group.share.record.lock.duration.ms"),
    ),
    (SHARE_AUTO_OFFSET_RESET, None),
    (SHARE_ISOLATION_LEVEL, None),
];

/// `share.auto.offset.reset`: where a share group starts on a partition it has no state for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ShareOffsetReset {
    /// The log end (the default).
    #[default]
    Latest,
    /// The log start.
    Earliest,
    /// The first record at most this long old (ms), else the log end.
    ByDuration(i64),
}

impl ShareOffsetReset {
    /// Kafka's forms: `latest`, `earliest`, `by_duration:<ISO-8601 duration>` (`P1DT2H`).
    pub fn parse(v: &str) -> Option<Self> {
        match v {
            "latest" => Some(Self::Latest),
            "earliest" => Some(Self::Earliest),
            _ => parse_duration_ms(v.strip_prefix("by_duration:")?).map(Self::ByDuration),
        }
    }
}

/// An ISO-8601 duration as Java's `Duration.parse` reads it (`[-+]PnDTnHnMn.nS`, each part
/// signed, a fraction of up to 9 digits only on seconds), in milliseconds; Kafka takes only a
/// non-negative total.
fn parse_duration_ms(v: &str) -> Option<i64> {
    let v = v.to_ascii_uppercase();
    let (negate, v) = match v.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, v.strip_prefix('+').unwrap_or(&v)),
    };
    let v = v.strip_prefix('P')?;
    let (days, time) = match v.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (v, None),
    };
    // A signed integer (digits only).
    let int = |s: &str| -> Option<i64> {
        let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    let mut ms: i64 = 0;
    let mut parts = 0;
    if !days.is_empty() {
        ms = ms.checked_add(int(days.strip_suffix('D')?)?.checked_mul(86_400_000)?)?;
        parts += 1;
    }
    if let Some(mut t) = time {
        for (unit, scale) in [('H', 3_600_000i64), ('M', 60_000)] {
            if let Some((n, rest)) = t.split_once(unit) {
                ms = ms.checked_add(int(n)?.checked_mul(scale)?)?;
                t = rest;
                parts += 1;
            }
        }
        if let Some(secs) = t.strip_suffix('S') {
            let (whole, fraction) = match secs.split_once(['.', ',']) {
                Some((w, f)) if f.len() <= 9 && f.bytes().all(|b| b.is_ascii_digit()) => (w, f),
                Some(_) => return None,
                None => (secs, ""),
            };
            let whole = int(whole)?;
            let frac_ms = format!("{fraction:0<3}")[..3].parse::<i64>().ok()?;
            let signed = if whole < 0 || secs.starts_with('-') {
                -frac_ms
            } else {
                frac_ms
            };
            ms = ms.checked_add(whole.checked_mul(1000)?.checked_add(signed)?)?;
            t = "";
            parts += 1;
        }
        if !t.is_empty() || parts == 0 {
            return None;
        }
    }
    let ms = if negate { ms.checked_neg()? } else { ms };
    (parts > 0 && ms >= 0).then_some(ms)
}

/// Checks one group config's name and form: `Err` says why (Kafka's INVALID_CONFIG).
pub fn validate(name: &str, value: &str) -> Result<(), String> {
    let bad = |why: &str| {
        Err(format!(
            "Invalid value {value} for configuration {name}: {why}"
        ))
    };
    match name {
        CONSUMER_SESSION_TIMEOUT_MS
        | CONSUMER_HEARTBEAT_INTERVAL_MS
        | SHARE_SESSION_TIMEOUT_MS
        | SHARE_HEARTBEAT_INTERVAL_MS
        | SHARE_RECORD_LOCK_DURATION_MS => match value.trim().parse::<i32>() {
            Ok(n) if n > 0 => Ok(()),
            _ => bad("must be a positive int"),
        },
        SHARE_AUTO_OFFSET_RESET => match ShareOffsetReset::parse(value) {
            Some(_) => Ok(()),
            None => bad("must be latest, earliest or by_duration:<ISO-8601 duration>"),
        },
        SHARE_ISOLATION_LEVEL => match value {
            "read_uncommitted" => Ok(()),
            // A share group reading only committed records is not served yet.
            "read_committed" => bad("read_committed is not supported by this broker"),
            _ => bad("must be read_uncommitted or read_committed"),
        },
        _ => Err(format!("Unknown group config name: {name}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_resets_read_as_kafka_writes_them() {
        assert_eq!(
            ShareOffsetReset::parse("latest"),
            Some(ShareOffsetReset::Latest)
        );
        assert_eq!(
            ShareOffsetReset::parse("earliest"),
            Some(ShareOffsetReset::Earliest)
        );
        assert_eq!(
            ShareOffsetReset::parse("by_duration:P1DT2H3M4.5S"),
            Some(ShareOffsetReset::ByDuration(93_784_500))
        );
        assert_eq!(
            ShareOffsetReset::parse("by_duration:PT10M"),
            Some(ShareOffsetReset::ByDuration(600_000))
        );
        for bad in [
            "",
            "Latest",
            "by_duration:",
            "by_duration:P",
            "by_duration:PT",
            "by_duration:10m",
            "by_duration:PT-1S",
        ] {
            assert_eq!(ShareOffsetReset::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn names_and_forms_are_checked() {
        assert!(validate(SHARE_RECORD_LOCK_DURATION_MS, "15000").is_ok());
        assert!(validate(SHARE_RECORD_LOCK_DURATION_MS, "0").is_err());
        assert!(validate(CONSUMER_SESSION_TIMEOUT_MS, "x").is_err());
        assert!(validate(SHARE_ISOLATION_LEVEL, "read_uncommitted").is_ok());
        assert!(validate(SHARE_ISOLATION_LEVEL, "read_committed").is_err());
        assert!(validate("share.nonsense", "1")
            .expect_err("unknown")
            .contains("Unknown group config name"));
    }
}
