//! Incremental fetch sessions (KIP-227). A client that opens a session (Fetch v7+, session id 0
//! and epoch 0) sends the full list of its partitions once; later requests of the session
//! (epoch 1, 2, ...) carry only the partitions whose fetch position changed, and the answers
//! only the partitions with something new: records, a moved high watermark, last stable offset
//! or log start, or an error. The broker keeps each session's partitions here.
//!
//! The cache holds at most `max.incremental.fetch.session.cache.slots` sessions (Kafka's
//! default 1000). When it is full, a new session takes the place of the least recently used one
//! idle for `min.incremental.fetch.session.eviction.ms` (120 s), or, for a follower, of the
//! least recently used consumer session; otherwise the client is answered without a session
//! (session id 0), which every client handles by fetching in full, as before KIP-227.
//!
//! One std mutex guards the cache: it is held for a map lookup and a copy of the session's
//! partition list, never across an await.

use std::collections::BTreeMap;
use std::sync::Mutex;

use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::FetchRequest;

/// Kafka's `max.incremental.fetch.session.cache.slots` default.
pub const DEFAULT_CACHE_SLOTS: usize = 1000;

/// Kafka's `min.incremental.fetch.session.eviction.ms`.
pub const MIN_EVICTION_MS: i64 = 120_000;

/// FETCH_SESSION_ID_NOT_FOUND.
pub const FETCH_SESSION_ID_NOT_FOUND: i16 = 70;
/// INVALID_FETCH_SESSION_EPOCH.
pub const INVALID_FETCH_SESSION_EPOCH: i16 = 71;

/// How a topic is named in a session: by name before Fetch v13, by id from v13.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum TopicKey {
    Name(String),
    Id([u8; 16]),
}

impl TopicKey {
    fn of(version: i16, topic: &FetchTopic) -> TopicKey {
        if version >= 13 {
            TopicKey::Id(*topic.topic_id.as_bytes())
        } else {
            TopicKey::Name(topic.topic.0.to_string())
        }
    }
}

/// A partition of a session: what the client asked for, and what it was last told.
#[derive(Debug, Clone)]
struct Cached {
    topic: FetchTopic,
    partition: FetchPartition,
    /// (high watermark, last stable offset, log start offset) last answered; none before the
    /// first answer.
    answered: Option<(i64, i64, i64)>,
}

#[derive(Debug)]
struct Session {
    /// The epoch the next request must carry.
    next_epoch: i32,
    partitions: BTreeMap<(TopicKey, i32), Cached>,
    /// A follower's session (Kafka's privileged sessions).
    follower: bool,
    last_used_ms: i64,
}

/// What to do with one Fetch request, from its session id and epoch.
#[derive(Debug)]
pub enum Plan {
    /// No session (Fetch before v7, epoch -1, or no room): read the request's partitions and
    /// answer them all, with session id 0.
    Sessionless,
    /// Read the session's partitions (the request's, for a new session) and answer as
    /// [`FetchSessions::finish`] says. `request` lists every partition of the session.
    Session {
        /// The session's id.
        id: i32,
        /// A new session: its first answer lists every partition.
        full: bool,
        /// The request to read, with every partition of the session.
        request: Box<FetchRequest>,
    },
    /// Refused with this top-level error code (unknown session, wrong epoch).
    Error(i16),
}

/// The broker's fetch sessions.
#[derive(Debug)]
pub struct FetchSessions {
    slots: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    sessions: BTreeMap<i32, Session>,
    evictions: u64,
}

fn key_of(version: i16, topic: &FetchTopic, partition: i32) -> (TopicKey, i32) {
    (TopicKey::of(version, topic), partition)
}

impl FetchSessions {
    /// A cache of at most `slots` sessions (0: sessions are never created).
    pub fn new(slots: usize) -> Self {
        Self {
            slots,
            inner: Mutex::default(),
        }
    }

    /// (sessions, partitions cached in them, sessions evicted so far), for the metrics.
    pub fn stats(&self) -> (usize, usize, u64) {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let partitions = inner.sessions.values().map(|s| s.partitions.len()).sum();
        (inner.sessions.len(), partitions, inner.evictions)
    }

    /// Decides how to serve `req` (Fetch `version`), updating its session: a new one is
    /// created, an existing one takes the request's changed and forgotten partitions.
    pub fn plan(&self, version: i16, req: &FetchRequest, follower: bool, now_ms: i64) -> Plan {
        if version < 7 {
            return Plan::Sessionless;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match (req.session_id, req.session_epoch) {
            // Epoch -1 closes the session named, and fetches without one.
            (id, -1) => {
                inner.sessions.remove(&id);
                Plan::Sessionless
            }
            // Epoch 0 opens a new session (closing the one named, if any).
            (id, 0) => {
                inner.sessions.remove(&id);
                let Some(new_id) = self.make_room(&mut inner, follower, now_ms) else {
                    return Plan::Sessionless;
                };
                let mut partitions = BTreeMap::new();
                for topic in &req.topics {
                    for p in &topic.partitions {
                        partitions.insert(
                            key_of(version, topic, p.partition),
                            Cached {
                                topic: topic_without_partitions(topic),
                                partition: p.clone(),
                                answered: None,
                            },
                        );
                    }
                }
                inner.sessions.insert(
                    new_id,
                    Session {
                        next_epoch: 1,
                        partitions,
                        follower,
                        last_used_ms: now_ms,
                    },
                );
                Plan::Session {
                    id: new_id,
                    full: true,
                    request: Box::new(req.clone()),
                }
            }
            (0, _) => Plan::Error(INVALID_FETCH_SESSION_EPOCH),
            (id, epoch) => {
                let Some(session) = inner.sessions.get_mut(&id) else {
                    return Plan::Error(FETCH_SESSION_ID_NOT_FOUND);
                };
                if epoch != session.next_epoch {
                    return Plan::Error(INVALID_FETCH_SESSION_EPOCH);
                }
                session.next_epoch = next_epoch(epoch);
                session.last_used_ms = now_ms;
                for topic in &req.topics {
                    for p in &topic.partitions {
                        let key = key_of(version, topic, p.partition);
                        match session.partitions.get_mut(&key) {
                            Some(c) => c.partition = p.clone(),
                            None => {
                                session.partitions.insert(
                                    key,
                                    Cached {
                                        topic: topic_without_partitions(topic),
                                        partition: p.clone(),
                                        answered: None,
                                    },
                                );
                            }
                        }
                    }
                }
                for forgotten in &req.forgotten_topics_data {
                    let topic = if version >= 13 {
                        TopicKey::Id(*forgotten.topic_id.as_bytes())
                    } else {
                        TopicKey::Name(forgotten.topic.0.to_string())
                    };
                    for p in &forgotten.partitions {
                        session.partitions.remove(&(topic.clone(), *p));
                    }
                }
                Plan::Session {
                    id,
                    full: false,
                    request: Box::new(session_request(req, session)),
                }
            }
        }
    }

    /// Picks a free session id, evicting a session if the cache is full and one may go.
    fn make_room(&self, inner: &mut Inner, follower: bool, now_ms: i64) -> Option<i32> {
        if self.slots == 0 {
            return None;
        }
        if inner.sessions.len() >= self.slots {
            let lru = |pred: &dyn Fn(&Session) -> bool| {
                inner
                    .sessions
                    .iter()
                    .filter(|(_, s)| pred(s))
                    .min_by_key(|(_, s)| s.last_used_ms)
                    .map(|(id, _)| *id)
            };
            let victim = lru(&|s| now_ms - s.last_used_ms >= MIN_EVICTION_MS)
                .or_else(|| follower.then(|| lru(&|s| !s.follower)).flatten())?;
            inner.sessions.remove(&victim);
            inner.evictions += 1;
        }
        loop {
            let random = odradek_common::Uuid::random();
            let b = random.as_bytes();
            let id = (u32::from_be_bytes([b[0], b[1], b[2], b[3]]) & 0x7fff_ffff) as i32;
            if id != 0 && !inner.sessions.contains_key(&id) {
                return Some(id);
            }
        }
    }

    /// Shapes the answer of a session's fetch: a new session's lists every partition; an
    /// incremental one only partitions with records, an error, or a moved high watermark, last
    /// stable offset or log start. Remembers what each partition was told.
    pub fn finish(
        &self,
        version: i16,
        id: i32,
        full: bool,
        request: &FetchRequest,
        response: &mut kafka_protocol::messages::FetchResponse,
    ) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let Some(session) = inner.sessions.get_mut(&id) else {
            // Closed or evicted meanwhile: the answer stands as a full one.
            response.session_id = 0;
            return;
        };
        response.session_id = id;
        for (topic, answered) in request.topics.iter().zip(response.responses.iter_mut()) {
            answered.partitions.retain(|d| {
                let key = key_of(version, topic, d.partition_index);
                let now = (d.high_watermark, d.last_stable_offset, d.log_start_offset);
                let cached = session.partitions.get_mut(&key);
                let changed =
                    has_news(d) || cached.as_ref().is_none_or(|c| c.answered != Some(now));
                if let Some(c) = cached {
                    c.answered = Some(now);
                }
                full || changed
            });
        }
        response.responses.retain(|t| !t.partitions.is_empty());
    }
}

/// Records, an error or a diverging epoch: always answered.
fn has_news(d: &PartitionData) -> bool {
    d.error_code != 0
        || d.records.as_ref().is_some_and(|r| !r.is_empty())
        || d.diverging_epoch.epoch >= 0
}

/// Kafka's epoch sequence: 1, 2, ..., i32::MAX, then 1 again.
fn next_epoch(epoch: i32) -> i32 {
    if epoch == i32::MAX {
        1
    } else {
        epoch + 1
    }
}

fn topic_without_partitions(topic: &FetchTopic) -> FetchTopic {
    let mut t = topic.clone();
    t.partitions = Vec::new();
    t
}

/// `req` with its topics replaced by every partition of the session, grouped by topic.
fn session_request(req: &FetchRequest, session: &Session) -> FetchRequest {
    let mut topics: Vec<FetchTopic> = Vec::new();
    let mut last: Option<&TopicKey> = None;
    for ((key, _), c) in &session.partitions {
        if last != Some(key) {
            topics.push(c.topic.clone());
            last = Some(key);
        }
        if let Some(t) = topics.last_mut() {
            t.partitions.push(c.partition.clone());
        }
    }
    let mut out = req.clone();
    out.topics = topics;
    out.forgotten_topics_data = Vec::new();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use kafka_protocol::messages::fetch_request::ForgottenTopic;
    use kafka_protocol::messages::fetch_response::FetchableTopicResponse;
    use kafka_protocol::messages::{FetchResponse, TopicName};
    use kafka_protocol::protocol::StrBytes;

    fn topic(name: &str, partitions: &[(i32, i64)]) -> FetchTopic {
        FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_string(name.to_string())))
            .with_partitions(
                partitions
                    .iter()
                    .map(|(p, offset)| {
                        FetchPartition::default()
                            .with_partition(*p)
                            .with_fetch_offset(*offset)
                    })
                    .collect(),
            )
    }

    fn request(id: i32, epoch: i32, topics: Vec<FetchTopic>) -> FetchRequest {
        FetchRequest::default()
            .with_session_id(id)
            .with_session_epoch(epoch)
            .with_topics(topics)
    }

    /// The answer a read of `req` would give: every partition, with `hw` and records for the
    /// partitions in `with_records`.
    fn read(req: &FetchRequest, hw: i64, with_records: &[i32]) -> FetchResponse {
        FetchResponse::default().with_responses(
            req.topics
                .iter()
                .map(|t| {
                    FetchableTopicResponse::default()
                        .with_topic(t.topic.clone())
                        .with_partitions(
                            t.partitions
                                .iter()
                                .map(|p| {
                                    let records = if with_records.contains(&p.partition) {
                                        Bytes::from_static(b"batch")
                                    } else {
                                        Bytes::new()
                                    };
                                    PartitionData::default()
                                        .with_partition_index(p.partition)
                                        .with_high_watermark(hw)
                                        .with_last_stable_offset(hw)
                                        .with_records(Some(records))
                                })
                                .collect(),
                        )
                })
                .collect(),
        )
    }

    fn answered(r: &FetchResponse) -> Vec<i32> {
        r.responses
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| p.partition_index))
            .collect()
    }

    fn open(sessions: &FetchSessions, topics: Vec<FetchTopic>) -> (i32, FetchRequest) {
        match sessions.plan(12, &request(0, 0, topics), false, 0) {
            Plan::Session {
                id,
                full: true,
                request,
            } => (id, *request),
            other => panic!("a new session, not {other:?}"),
        }
    }

    #[test]
    fn an_incremental_fetch_reads_every_partition_and_answers_only_news() {
        let sessions = FetchSessions::new(10);
        let (id, full) = open(&sessions, vec![topic("a", &[(0, 0), (1, 0), (2, 0)])]);
        assert!(id > 0);
        let mut first = read(&full, 10, &[0]);
        sessions.finish(12, id, true, &full, &mut first);
        assert_eq!(first.session_id, id);
        assert_eq!(
            answered(&first),
            vec![0, 1, 2],
            "a new session's answer is full"
        );

        // Epoch 1 names only the partition that moved; the read covers all three.
        let Plan::Session {
            request,
            full: false,
            ..
        } = sessions.plan(12, &request(id, 1, vec![topic("a", &[(0, 5)])]), false, 1)
        else {
            panic!("incremental");
        };
        let offsets: Vec<(i32, i64)> = request.topics[0]
            .partitions
            .iter()
            .map(|p| (p.partition, p.fetch_offset))
            .collect();
        assert_eq!(offsets, vec![(0, 5), (1, 0), (2, 0)]);
        // Nothing new on 0 or 2; partition 1 has records.
        let mut second = read(&request, 10, &[1]);
        sessions.finish(12, id, false, &request, &mut second);
        assert_eq!(answered(&second), vec![1]);

        // A moved high watermark is news for every partition, once.
        let Plan::Session { request, .. } = sessions.plan(12, &request_of(id, 2), false, 2) else {
            panic!("incremental");
        };
        let mut third = read(&request, 11, &[]);
        sessions.finish(12, id, false, &request, &mut third);
        assert_eq!(answered(&third), vec![0, 1, 2]);
        let Plan::Session { request, .. } = sessions.plan(12, &request_of(id, 3), false, 3) else {
            panic!("incremental");
        };
        let mut fourth = read(&request, 11, &[]);
        sessions.finish(12, id, false, &request, &mut fourth);
        assert!(answered(&fourth).is_empty(), "nothing changed");
    }

    fn request_of(id: i32, epoch: i32) -> FetchRequest {
        request(id, epoch, vec![])
    }

    #[test]
    fn wrong_epochs_unknown_and_closed_sessions_are_refused() {
        let sessions = FetchSessions::new(10);
        let (id, _) = open(&sessions, vec![topic("a", &[(0, 0)])]);
        assert!(matches!(
            sessions.plan(12, &request_of(id, 2), false, 0),
            Plan::Error(INVALID_FETCH_SESSION_EPOCH)
        ));
        assert!(matches!(
            sessions.plan(12, &request_of(id.wrapping_add(1).max(1), 1), false, 0),
            Plan::Error(FETCH_SESSION_ID_NOT_FOUND)
        ));
        assert!(matches!(
            sessions.plan(12, &request_of(0, 3), false, 0),
            Plan::Error(INVALID_FETCH_SESSION_EPOCH)
        ));
        // Epoch -1 closes it and is served without a session.
        assert!(matches!(
            sessions.plan(12, &request_of(id, -1), false, 0),
            Plan::Sessionless
        ));
        assert!(matches!(
            sessions.plan(12, &request_of(id, 1), false, 0),
            Plan::Error(FETCH_SESSION_ID_NOT_FOUND)
        ));
        // Before v7 there are no sessions.
        assert!(matches!(
            sessions.plan(6, &request(0, 0, vec![]), false, 0),
            Plan::Sessionless
        ));
    }

    #[test]
    fn forgotten_partitions_leave_the_session() {
        let sessions = FetchSessions::new(10);
        let (id, _) = open(
            &sessions,
            vec![topic("a", &[(0, 0), (1, 0)]), topic("b", &[(0, 0)])],
        );
        let forget = request_of(id, 1).with_forgotten_topics_data(vec![ForgottenTopic::default()
            .with_topic(TopicName(StrBytes::from_static_str("a")))
            .with_partitions(vec![1])]);
        let Plan::Session { request, .. } = sessions.plan(12, &forget, false, 0) else {
            panic!("incremental");
        };
        let left: Vec<(String, i32)> = request
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|p| (t.topic.0.to_string(), p.partition))
            })
            .collect();
        assert_eq!(left, vec![("a".into(), 0), ("b".into(), 0)]);
        assert_eq!(sessions.stats(), (1, 2, 0));
    }

    #[test]
    fn from_v13_topics_are_kept_and_forgotten_by_id() {
        let sessions = FetchSessions::new(10);
        let by_id = |id: u8, partitions: &[i32]| {
            FetchTopic::default()
                .with_topic_id(uuid::Uuid::from_bytes([id; 16]))
                .with_partitions(
                    partitions
                        .iter()
                        .map(|p| FetchPartition::default().with_partition(*p))
                        .collect(),
                )
        };
        let Plan::Session { id, .. } = sessions.plan(
            13,
            &request(0, 0, vec![by_id(1, &[0, 1]), by_id(2, &[0])]),
            false,
            0,
        ) else {
            panic!("a new session");
        };
        let forget = request_of(id, 1).with_forgotten_topics_data(vec![ForgottenTopic::default()
            .with_topic_id(uuid::Uuid::from_bytes([1; 16]))
            .with_partitions(vec![0, 1])]);
        let Plan::Session { request, .. } = sessions.plan(13, &forget, false, 0) else {
            panic!("incremental");
        };
        assert_eq!(request.topics.len(), 1);
        assert_eq!(request.topics[0].topic_id.as_bytes(), &[2; 16]);
    }

    #[test]
    fn a_full_cache_evicts_idle_sessions_and_consumers_for_followers() {
        let sessions = FetchSessions::new(2);
        let (a, _) = open(&sessions, vec![topic("a", &[(0, 0)])]);
        // The second session is used later than the first.
        assert!(matches!(
            sessions.plan(12, &request(0, 0, vec![topic("a", &[(0, 0)])]), false, 10),
            Plan::Session { full: true, .. }
        ));
        // Full, nobody idle long enough: a consumer gets no session.
        assert!(matches!(
            sessions.plan(
                12,
                &request(0, 0, vec![topic("a", &[(0, 0)])]),
                false,
                1_000
            ),
            Plan::Sessionless
        ));
        // A follower takes the least recently used consumer's place.
        assert!(matches!(
            sessions.plan(12, &request(0, 0, vec![topic("a", &[(0, 0)])]), true, 1_000),
            Plan::Session { full: true, .. }
        ));
        assert!(matches!(
            sessions.plan(12, &request_of(a, 1), false, 1_000),
            Plan::Error(FETCH_SESSION_ID_NOT_FOUND)
        ));
        // After the eviction time, an idle session makes room even for a consumer.
        assert!(matches!(
            sessions.plan(
                12,
                &request(0, 0, vec![topic("a", &[(0, 0)])]),
                false,
                MIN_EVICTION_MS + 10
            ),
            Plan::Session { full: true, .. }
        ));
        assert_eq!(sessions.stats().2, 2, "two evictions");
    }
}
