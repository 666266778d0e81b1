//! Client quotas (Kafka's `ClientQuotaManager`): produce and fetch byte rates and the request
//! percentage, per user, client id, or both, with Kafka's precedence of the eight entity forms
//! and defaults. Usage is a rate over `quota.window.num` (11) samples of
//! `quota.window.size.seconds` (1); a client over its quota is told to wait
//! `(rate - quota) / quota * window` (throttle_time_ms) and its connection is muted that long.
//!
//! Clients that share the quota's entity share the usage (a user quota is the sum of that
//! user's clients), as Kafka's sensors are keyed.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use odradek_metadata::{ClientQuotasImage, QuotaEntity};

/// What a quota limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuotaKind {
    /// `producer_byte_rate`: bytes of produce requests per second.
    Produce,
    /// `consumer_byte_rate`: bytes of fetch responses per second.
    Fetch,
    /// `request_percentage`: handler time, in percent of one thread.
    Request,
}

impl QuotaKind {
    /// Kafka's quota key.
    pub fn key(self) -> &'static str {
        match self {
            QuotaKind::Produce => "producer_byte_rate",
            QuotaKind::Fetch => "consumer_byte_rate",
            QuotaKind::Request => "request_percentage",
        }
    }
}

/// `quota.window.num` and `quota.window.size.seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaWindow {
    /// Samples kept (11).
    pub samples: usize,
    /// One sample's length in milliseconds (1000).
    pub sample_ms: i64,
}

impl Default for QuotaWindow {
    fn default() -> Self {
        Self {
            samples: 11,
            sample_ms: 1000,
        }
    }
}

/// A rate over sampled windows (Kafka's `Rate` over a `SampledStat`).
#[derive(Debug, Default)]
struct SampledRate {
    /// (sample start, sum of values), oldest first.
    samples: VecDeque<(i64, f64)>,
}

impl SampledRate {
    fn record(&mut self, w: QuotaWindow, value: f64, now_ms: i64) {
        match self.samples.back_mut() {
            Some((start, sum)) if now_ms < *start + w.sample_ms => *sum += value,
            _ => self.samples.push_back((now_ms, value)),
        }
        self.purge(w, now_ms);
    }

    /// A sample whose window ended `samples` windows ago is gone (Kafka judges a sample by
    /// its last event); at most `samples` are kept.
    fn purge(&mut self, w: QuotaWindow, now_ms: i64) {
        let horizon = now_ms - w.samples as i64 * w.sample_ms;
        while self.samples.len() > w.samples
            || self
                .samples
                .front()
                .is_some_and(|(s, _)| *s + w.sample_ms <= horizon)
        {
            self.samples.pop_front();
        }
    }

    /// The window the rate divides by: the time since the oldest sample began, at least
    /// `samples - 1` whole samples (so a new sensor is not judged on one burst). Kafka's
    /// `Rate.windowSize` tops a young window up by whole samples instead; measured here with
    /// a throttled librdkafka producer, that admitted 1.1-1.3x the quota, this 0.97x.
    fn window_ms(&self, w: QuotaWindow, now_ms: i64) -> f64 {
        let elapsed = self.samples.front().map_or(0, |(s, _)| now_ms - s);
        elapsed.max((w.samples as i64 - 1) * w.sample_ms).max(1) as f64
    }

    /// Per second.
    fn rate(&self, w: QuotaWindow, now_ms: i64) -> f64 {
        let total: f64 = self.samples.iter().map(|(_, v)| v).sum();
        total * 1000.0 / self.window_ms(w, now_ms)
    }
}

/// The quota that applies to `user` with `client_id`, and the sensor it is counted on (user
/// and client-id tags, empty when the quota does not depend on one), in Kafka's order:
/// user+client, user+default client, user, default user+client, default user+default client,
/// default user, client, default client.
pub fn quota_for(
    image: &ClientQuotasImage,
    kind: QuotaKind,
    user: &str,
    client_id: &str,
) -> Option<(f64, (String, String))> {
    let entity = |u: Option<Option<&str>>, c: Option<Option<&str>>| {
        let mut e = QuotaEntity::new();
        if let Some(u) = u {
            e.insert("user".into(), u.map(str::to_string));
        }
        if let Some(c) = c {
            e.insert("client-id".into(), c.map(str::to_string));
        }
        e
    };
    let both = (user.to_string(), client_id.to_string());
    let user_only = (user.to_string(), String::new());
    let client_only = (String::new(), client_id.to_string());
    let order = [
        (entity(Some(Some(user)), Some(Some(client_id))), &both),
        (entity(Some(Some(user)), Some(None)), &both),
        (entity(Some(Some(user)), None), &user_only),
        (entity(Some(None), Some(Some(client_id))), &both),
        (entity(Some(None), Some(None)), &both),
        (entity(Some(None), None), &user_only),
        (entity(None, Some(Some(client_id))), &client_only),
        (entity(None, Some(None)), &client_only),
    ];
    let found = order.into_iter().find_map(|(e, tags)| {
        image
            .entities
            .get(&e)
            .and_then(|keys| keys.get(kind.key()))
            .map(|v| (v.0, tags.clone()))
    });
    found
}

/// The usage of every client that has a quota, on this broker.
#[derive(Debug, Default)]
pub struct ClientQuotaManager {
    window: QuotaWindow,
    // A std Mutex: held for a map lookup and a few additions, never across an `.await`.
    sensors: Mutex<HashMap<(QuotaKind, String, String), SampledRate>>,
}

impl ClientQuotaManager {
    /// A manager with these windows.
    pub fn new(window: QuotaWindow) -> Self {
        Self {
            window,
            sensors: Mutex::default(),
        }
    }

    /// Records `value` of `kind` for the client and returns how long it must wait (0: within
    /// its quota, or no quota applies).
    pub fn record(
        &self,
        image: &ClientQuotasImage,
        kind: QuotaKind,
        user: &str,
        client_id: &str,
        value: f64,
        now_ms: i64,
    ) -> u32 {
        if image.entities.is_empty() {
            return 0;
        }
        let Some((quota, (u, c))) = quota_for(image, kind, user, client_id) else {
            return 0;
        };
        let w = self.window;
        let mut sensors = self.sensors.lock().unwrap_or_else(|e| e.into_inner());
        let rate = sensors.entry((kind, u, c)).or_default();
        rate.record(w, value, now_ms);
        let observed = rate.rate(w, now_ms);
        if observed <= quota {
            return 0;
        }
        let throttle = (observed - quota) / quota * rate.window_ms(w, now_ms);
        // Kafka bounds a request-quota throttle by one window; byte-quota throttles are not
        // bounded.
        let max = match kind {
            QuotaKind::Request => w.sample_ms as f64,
            _ => f64::from(i32::MAX),
        };
        throttle.min(max).round() as u32
    }

    /// Takes back a recorded value (a throttled fetch answers no data, as in Kafka).
    pub fn unrecord(
        &self,
        image: &ClientQuotasImage,
        kind: QuotaKind,
        user: &str,
        client_id: &str,
        value: f64,
        now_ms: i64,
    ) {
        let Some((_, (u, c))) = quota_for(image, kind, user, client_id) else {
            return;
        };
        let mut sensors = self.sensors.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(rate) = sensors.get_mut(&(kind, u, c)) {
            rate.record(self.window, -value, now_ms);
        }
    }

    /// Forgets clients idle for a whole window (bounds the map).
    pub fn expire(&self, now_ms: i64) {
        let w = self.window;
        let mut sensors = self.sensors.lock().unwrap_or_else(|e| e.into_inner());
        sensors.retain(|_, r| {
            r.purge(w, now_ms);
            !r.samples.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use odradek_metadata::QuotaValue;

    /// (entity parts, quota key, value).
    type Entry<'a> = (&'a [(&'a str, Option<&'a str>)], &'a str, f64);

    fn image(entries: &[Entry<'_>]) -> ClientQuotasImage {
        let mut img = ClientQuotasImage::default();
        for (parts, key, value) in entries {
            let e: QuotaEntity = parts
                .iter()
                .map(|(t, n)| (t.to_string(), n.map(str::to_string)))
                .collect();
            img.entities
                .entry(e)
                .or_default()
                .insert(key.to_string(), QuotaValue(*value));
        }
        img
    }

    #[test]
    fn precedence_follows_kafka() {
        let img = image(&[
            (&[("client-id", None)], "producer_byte_rate", 1.0),
            (&[("client-id", Some("c"))], "producer_byte_rate", 2.0),
            (&[("user", None)], "producer_byte_rate", 3.0),
            (&[("user", Some("u"))], "producer_byte_rate", 4.0),
            (
                &[("user", Some("u")), ("client-id", Some("c"))],
                "producer_byte_rate",
                5.0,
            ),
        ]);
        let q = |u: &str, c: &str| quota_for(&img, QuotaKind::Produce, u, c);
        assert_eq!(q("u", "c"), Some((5.0, ("u".into(), "c".into()))));
        assert_eq!(q("u", "d"), Some((4.0, ("u".into(), String::new()))));
        assert_eq!(q("v", "c"), Some((3.0, ("v".into(), String::new()))));
        assert_eq!(quota_for(&img, QuotaKind::Fetch, "u", "c"), None);
        let clients = image(&[
            (&[("client-id", None)], "consumer_byte_rate", 1.0),
            (&[("client-id", Some("c"))], "consumer_byte_rate", 2.0),
        ]);
        assert_eq!(
            quota_for(&clients, QuotaKind::Fetch, "u", "c"),
            Some((2.0, (String::new(), "c".into())))
        );
        assert_eq!(
            quota_for(&clients, QuotaKind::Fetch, "u", "x"),
            Some((1.0, (String::new(), "x".into())))
        );
    }

    #[test]
    fn over_the_quota_waits_until_the_rate_is_back() {
        let img = image(&[(&[("user", Some("u"))], "producer_byte_rate", 1000.0)]);
        let m = ClientQuotaManager::new(QuotaWindow::default());
        // 10 KB at once: the rate over the 10-second minimum window is 1 KB/s, right at the
        // quota.
        assert_eq!(m.record(&img, QuotaKind::Produce, "u", "c", 10_000.0, 0), 0);
        // Another 10 KB half a second later: 2 KB/s over the 10 s window, twice the quota:
        // wait one window.
        let t = m.record(&img, QuotaKind::Produce, "u", "c", 10_000.0, 500);
        assert_eq!(t, 10_000);
        // Another client of the same user shares the usage.
        assert!(m.record(&img, QuotaKind::Produce, "u", "other", 1.0, 600) > 0);
        // A user without a quota is never throttled.
        assert_eq!(m.record(&img, QuotaKind::Produce, "v", "c", 1e9, 700), 0);
        m.expire(100_000);
        assert!(m.sensors.lock().expect("lock").is_empty());
    }
}
