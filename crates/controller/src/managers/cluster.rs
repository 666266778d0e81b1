//! Broker registration, heartbeats, fencing and controlled shutdown.
//!
//! Liveness is not metadata: when each broker was last heard from lives only on the active
//! controller ([`BrokerSessions`]), as in Kafka; a new active controller starts every session
//! afresh. What follows from it (fencing) is metadata, written as records.

use std::collections::BTreeMap;

use odradek_common::{ErrorCode, Uuid};
use odradek_metadata::proto::{self, metadata_record::Record, MetadataRecord};
use odradek_metadata::MetadataImage;

use super::replication;
use super::{err, rec, ControllerResult, ControllerSettings};
use crate::pb;

/// Last contact per broker, in the active controller's memory.
#[derive(Debug, Clone, Default)]
pub struct BrokerSessions {
    last_contact_ms: BTreeMap<i32, i64>,
}

impl BrokerSessions {
    /// Records a successful registration or heartbeat.
    pub fn touch(&mut self, broker_id: i32, now_ms: i64) {
        self.last_contact_ms.insert(broker_id, now_ms);
    }

    /// Gives every registered broker a fresh session (a controller just became active).
    pub fn reset(&mut self, image: &MetadataImage, now_ms: i64) {
        self.last_contact_ms = image
            .cluster
            .brokers
            .keys()
            .map(|id| (*id, now_ms))
            .collect();
    }

    fn alive(&self, broker_id: i32, now_ms: i64, timeout_ms: i64) -> bool {
        self.last_contact_ms
            .get(&broker_id)
            .is_some_and(|t| now_ms.saturating_sub(*t) <= timeout_ms)
    }
}

/// RegisterBroker. The new epoch is above every epoch handed out before (the image's offset
/// plus one: the record will commit at a later offset). A broker registers fenced.
pub fn register_broker(
    image: &MetadataImage,
    request: &pb::RegisterBrokerRequest,
    settings: &ControllerSettings,
    sessions: &BrokerSessions,
    now_ms: i64,
) -> ControllerResult<pb::RegisterBrokerResponse> {
    let fail = |(code, message): (i32, String)| {
        ControllerResult::answer(pb::RegisterBrokerResponse {
            error_code: code,
            error_message: message,
            broker_epoch: -1,
        })
    };
    if request.cluster_id != settings.cluster_id {
        return fail(err(
            ErrorCode::InconsistentClusterId,
            format!(
                "broker {} is formatted for cluster {}, this controller belongs to {}",
                request.broker_id, request.cluster_id, settings.cluster_id
            ),
        ));
    }
    let Some(incarnation) = Uuid::from_slice(&request.incarnation_id) else {
        return fail(err(
            ErrorCode::InvalidRequest,
            "incarnation id must be 16 bytes",
        ));
    };
    let mut endpoints = Vec::new();
    for l in &request.listeners {
        if l.port == 0 || l.port > u32::from(u16::MAX) || l.host.is_empty() {
            return fail(err(
                ErrorCode::InvalidRequest,
                format!(
                    "listener {} has an invalid address {}:{}",
                    l.name, l.host, l.port
                ),
            ));
        }
        endpoints.push(proto::Endpoint {
            listener: l.name.clone(),
            host: l.host.clone(),
            port: l.port,
            security_protocol: l.security_protocol.clone(),
        });
    }
    if let Some(existing) = image.cluster.brokers.get(&request.broker_id) {
        if existing.incarnation_id == incarnation {
            // A retried registration of the same process: answer with the epoch it already has.
            return ControllerResult::answer(pb::RegisterBrokerResponse {
                broker_epoch: existing.epoch,
                ..Default::default()
            });
        }
        if sessions.alive(
            request.broker_id,
            now_ms,
            settings.broker_session_timeout_ms,
        ) && !existing.fenced
        {
            return fail(err(
                ErrorCode::DuplicateBrokerRegistration,
                format!(
                    "another live broker is registered with id {}",
                    request.broker_id
                ),
            ));
        }
    }
    let epoch = image.offset.max(0) + 1;
    let mut records = vec![rec(Record::RegisterBroker(proto::RegisterBrokerRecord {
        broker_id: request.broker_id,
        incarnation_id: request.incarnation_id.clone(),
        broker_epoch: epoch,
        endpoints,
        rack: request.rack.clone(),
        fenced: true,
        in_controlled_shutdown: false,
        log_dirs: request.log_dirs.clone(),
    }))];
    // A re-registering broker is a new process: its old leaderships must move.
    if image.cluster.brokers.contains_key(&request.broker_id) {
        let usable = |b: i32| b != request.broker_id && usable(image, b);
        records.extend(replication::move_away_from(
            image,
            request.broker_id,
            &usable,
            settings,
        ));
    }
    ControllerResult {
        records,
        response: pb::RegisterBrokerResponse {
            broker_epoch: epoch,
            ..Default::default()
        },
    }
}

fn usable(image: &MetadataImage, b: i32) -> bool {
    super::reassignment::acceptable_leader(image)(b)
}

fn leads_anything(image: &MetadataImage, broker: i32) -> bool {
    image
        .topics
        .by_id
        .values()
        .any(|t| t.partitions.values().any(|p| p.leader == broker))
}

/// BrokerHeartbeat: unfences a caught-up broker, fences one that asks, and walks a broker
/// through controlled shutdown (leaderships move away; it may stop once it leads nothing).
pub fn heartbeat(
    image: &MetadataImage,
    request: &pb::BrokerHeartbeatRequest,
    settings: &ControllerSettings,
) -> ControllerResult<pb::BrokerHeartbeatResponse> {
    let Some(b) = image.cluster.brokers.get(&request.broker_id) else {
        let (code, message) = err(
            ErrorCode::BrokerIdNotRegistered,
            format!("broker {} is not registered", request.broker_id),
        );
        return ControllerResult::answer(pb::BrokerHeartbeatResponse {
            error_code: code,
            error_message: message,
            is_fenced: true,
            ..Default::default()
        });
    };
    if b.epoch != request.broker_epoch {
        let (code, message) = err(
            ErrorCode::StaleBrokerEpoch,
            format!(
                "broker epoch {} is not the current {}",
                request.broker_epoch, b.epoch
            ),
        );
        return ControllerResult::answer(pb::BrokerHeartbeatResponse {
            error_code: code,
            error_message: message,
            is_fenced: true,
            ..Default::default()
        });
    }
    let caught_up = request.current_metadata_offset >= b.epoch;
    let id = b.id;
    let mut records = Vec::new();
    let mut fenced = b.fenced;
    let mut shutting_down = b.in_controlled_shutdown;
    if request.want_shut_down && !shutting_down {
        shutting_down = true;
        records.push(registration_change(
            id,
            b.epoch,
            proto::FenceChange::None,
            Some(true),
        ));
        let usable = |x: i32| x != id && usable(image, x);
        records.extend(replication::move_away_from(image, id, &usable, settings));
    } else if request.want_fence && !fenced {
        fenced = true;
        records.extend(fence(image, id, settings));
    } else if fenced && !request.want_fence && !shutting_down && caught_up {
        fenced = false;
        records.push(registration_change(
            id,
            b.epoch,
            proto::FenceChange::Unfence,
            None,
        ));
        records.extend(replication::elect_returning(image, id));
    }
    // Replicas on a failed log directory: out of their ISRs and leadership (each heartbeat
    // repeats them until the metadata shows it).
    if !request.offline_replicas.is_empty() && records.is_empty() {
        let offline: Vec<(odradek_common::Uuid, i32)> = request
            .offline_replicas
            .iter()
            .filter_map(|r| Some((odradek_common::Uuid::from_slice(&r.topic_id)?, r.partition)))
            .collect();
        records.extend(replication::take_offline(image, id, &offline, settings));
    }
    // It may stop once the moves are committed and it leads nothing.
    let should_shut_down = shutting_down && records.is_empty() && !leads_anything(image, id);
    ControllerResult {
        records,
        response: pb::BrokerHeartbeatResponse {
            is_caught_up: caught_up,
            is_fenced: fenced,
            should_shut_down,
            ..Default::default()
        },
    }
}

fn registration_change(
    broker_id: i32,
    epoch: i64,
    fence: proto::FenceChange,
    cs: Option<bool>,
) -> MetadataRecord {
    rec(Record::BrokerRegistrationChange(
        proto::BrokerRegistrationChangeRecord {
            broker_id,
            broker_epoch: epoch,
            fence: fence as i32,
            in_controlled_shutdown: cs,
        },
    ))
}

/// Records that fence `broker` and move its leaderships and ISR memberships away.
pub fn fence(
    image: &MetadataImage,
    broker: i32,
    settings: &ControllerSettings,
) -> Vec<MetadataRecord> {
    let Some(b) = image.cluster.brokers.get(&broker) else {
        return Vec::new();
    };
    let mut records = vec![registration_change(
        broker,
        b.epoch,
        proto::FenceChange::Fence,
        None,
    )];
    let usable = |x: i32| x != broker && usable(image, x);
    records.extend(replication::move_away_from(
        image, broker, &usable, settings,
    ));
    records
}

/// Fences every unfenced broker not heard from within `broker.session.timeout.ms`.
pub fn fence_expired(
    image: &MetadataImage,
    sessions: &BrokerSessions,
    settings: &ControllerSettings,
    now_ms: i64,
) -> Vec<MetadataRecord> {
    let expired: Vec<i32> = image
        .cluster
        .brokers
        .values()
        .filter(|b| !b.fenced && !sessions.alive(b.id, now_ms, settings.broker_session_timeout_ms))
        .map(|b| b.id)
        .collect();
    // Fence one at a time, each against the image the earlier ones made (so a second fenced
    // broker's changes do not undo the first's), counting all of them as unusable.
    let mut records = Vec::new();
    let mut current = image.clone();
    for id in &expired {
        tracing::warn!(broker_id = id, "broker session expired; fencing it");
        let b = &image.cluster.brokers[id];
        let mut these = vec![registration_change(
            *id,
            b.epoch,
            proto::FenceChange::Fence,
            None,
        )];
        let usable = |x: i32| !expired.contains(&x) && usable(image, x);
        these.extend(replication::move_away_from(
            &current, *id, &usable, settings,
        ));
        current = super::fold(&current, &these);
        records.extend(these);
    }
    records
}

/// UnregisterBroker (`kafka-cluster.sh unregister`): the broker's leaderships and ISR
/// memberships move away, then its registration is removed. Its replicas stay assigned (a
/// reassignment moves them), as in Kafka.
pub fn unregister_broker(
    image: &MetadataImage,
    request: &pb::UnregisterBrokerRequest,
    settings: &ControllerSettings,
) -> ControllerResult<pb::UnregisterBrokerResponse> {
    let broker = request.broker_id;
    let Some(b) = image.cluster.brokers.get(&broker) else {
        let (error_code, error_message) = err(
            ErrorCode::BrokerIdNotRegistered,
            format!("broker {broker} is not currently registered"),
        );
        return ControllerResult::answer(pb::UnregisterBrokerResponse {
            error_code,
            error_message,
        });
    };
    let usable = |x: i32| x != broker && usable(image, x);
    let mut records = replication::move_away_from(image, broker, &usable, settings);
    records.push(rec(Record::UnregisterBroker(
        proto::UnregisterBrokerRecord {
            broker_id: broker,
            broker_epoch: b.epoch,
        },
    )));
    ControllerResult {
        records,
        response: pb::UnregisterBrokerResponse::default(),
    }
}
