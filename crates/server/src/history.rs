//! What the web console plots: the broker samples, every [`SAMPLE_MS`], the total lag of each
//! group it coordinates and the produce and fetch rates of each topic it hosts, into ring
//! buffers of [`CAPACITY`] points (30 minutes). Bounded: at most [`MAX_SERIES`] groups and as
//! many topics; a series not sampled for a whole buffer's span is dropped.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

use crate::handlers::Broker;

/// How often the broker samples.
pub const SAMPLE_MS: u64 = 2000;
/// Points per series (30 minutes at [`SAMPLE_MS`]).
pub const CAPACITY: usize = 900;
/// Series kept per kind.
pub const MAX_SERIES: usize = 1_000;

/// One topic's rates at one time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rates {
    /// When (ms since the epoch).
    pub at_ms: i64,
    /// Bytes produced per second.
    pub bytes_in: f64,
    /// Bytes fetched by consumers per second.
    pub bytes_out: f64,
    /// Records produced per second.
    pub messages_in: f64,
}

#[derive(Debug, Default)]
struct TopicSeries {
    /// The counters at the last sample: (ms, bytes in, bytes out, messages in).
    last: Option<(i64, u64, u64, u64)>,
    points: VecDeque<Rates>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Group -> (ms, total lag).
    lag: HashMap<String, VecDeque<(i64, i64)>>,
    topics: HashMap<String, TopicSeries>,
}

/// The sampled series. The lock is held for one sample's insertions or one series' copy.
#[derive(Debug, Default)]
pub struct History(Mutex<Inner>);

fn push<T>(q: &mut VecDeque<T>, v: T) {
    if q.len() == CAPACITY {
        q.pop_front();
    }
    q.push_back(v);
}

impl History {
    /// Takes one sample of `broker` at `now_ms`.
    pub fn sample(&self, broker: &Broker, now_ms: i64) {
        let mut lag: BTreeMap<String, i64> = BTreeMap::new();
        for l in crate::metrics::consumer_lag(broker) {
            *lag.entry(l.group.clone()).or_default() += l.lag();
        }
        let mut topics: Vec<String> = broker
            .replicas
            .all()
            .iter()
            .map(|h| h.topic.clone())
            .collect();
        topics.sort();
        topics.dedup();
        let counters: Vec<_> = topics
            .into_iter()
            .map(|t| {
                let c = broker.replicas.metrics().topic_totals(&t);
                (t, c)
            })
            .collect();
        let Ok(mut inner) = self.0.lock() else { return };
        let stale = now_ms - (CAPACITY as i64) * SAMPLE_MS as i64;
        for (group, total) in lag {
            if inner.lag.len() < MAX_SERIES || inner.lag.contains_key(&group) {
                push(inner.lag.entry(group).or_default(), (now_ms, total));
            }
        }
        inner
            .lag
            .retain(|_, q| q.back().is_some_and(|(at, _)| *at > stale));
        for (topic, (bytes_in, bytes_out, messages_in)) in counters {
            if inner.topics.len() >= MAX_SERIES && !inner.topics.contains_key(&topic) {
                continue;
            }
            let s = inner.topics.entry(topic).or_default();
            if let Some((at, bi, bo, mi)) = s.last {
                let secs = ((now_ms - at) as f64 / 1000.0).max(0.001);
                let rate = |now: u64, then: u64| now.saturating_sub(then) as f64 / secs;
                push(
                    &mut s.points,
                    Rates {
                        at_ms: now_ms,
                        bytes_in: rate(bytes_in, bi),
                        bytes_out: rate(bytes_out, bo),
                        messages_in: rate(messages_in, mi),
                    },
                );
            }
            s.last = Some((now_ms, bytes_in, bytes_out, messages_in));
        }
        inner
            .topics
            .retain(|_, s| s.last.is_some_and(|(at, ..)| at > stale));
    }

    /// The total lag of `group` over time: (ms, records).
    pub fn lag(&self, group: &str) -> Vec<(i64, i64)> {
        self.0
            .lock()
            .ok()
            .and_then(|i| i.lag.get(group).map(|q| q.iter().copied().collect()))
            .unwrap_or_default()
    }

    /// The rates of `topic` over time.
    pub fn rates(&self, topic: &str) -> Vec<Rates> {
        self.0
            .lock()
            .ok()
            .and_then(|i| {
                i.topics
                    .get(topic)
                    .map(|s| s.points.iter().copied().collect())
            })
            .unwrap_or_default()
    }

    /// The rates summed over every topic, by sample time.
    pub fn total_rates(&self) -> Vec<Rates> {
        let Ok(inner) = self.0.lock() else {
            return Vec::new();
        };
        let mut by_time: BTreeMap<i64, Rates> = BTreeMap::new();
        for s in inner.topics.values() {
            for p in &s.points {
                let r = by_time.entry(p.at_ms).or_insert(Rates {
                    at_ms: p.at_ms,
                    bytes_in: 0.0,
                    bytes_out: 0.0,
                    messages_in: 0.0,
                });
                r.bytes_in += p.bytes_in;
                r.bytes_out += p.bytes_out;
                r.messages_in += p.messages_in;
            }
        }
        by_time.into_values().collect()
    }
}
