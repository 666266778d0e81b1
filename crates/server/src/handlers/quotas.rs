//! AlterClientQuotas (to the controller in an envelope; ALTER_CONFIGS on the cluster) and
//! DescribeClientQuotas (from this broker's image; DESCRIBE_CONFIGS on the cluster).

use kafka_protocol::messages::alter_client_quotas_response::{self as alter};
use kafka_protocol::messages::describe_client_quotas_response::{EntityData, EntryData, ValueData};
use kafka_protocol::messages::{
    AlterClientQuotasRequest, AlterClientQuotasResponse, DescribeClientQuotasRequest,
    DescribeClientQuotasResponse, RequestKind, ResponseKind,
};
use kafka_protocol::protocol::StrBytes;
use odradek_common::ErrorCode;
use odradek_frontend::RequestContext;
use odradek_metadata::acl::AclOperation;
use odradek_metadata::{QuotaEntity, QUOTA_ENTITY_TYPES};

use super::Broker;

pub(super) async fn alter_client_quotas(
    broker: &Broker,
    ctx: &RequestContext,
    r: AlterClientQuotasRequest,
) -> AlterClientQuotasResponse {
    let entities: Vec<Vec<alter::EntityData>> = r
        .entries
        .iter()
        .map(|e| {
            e.entity
                .iter()
                .map(|p| {
                    alter::EntityData::default()
                        .with_entity_type(p.entity_type.clone())
                        .with_entity_name(p.entity_name.clone())
                })
                .collect()
        })
        .collect();
    let refused = move |code: ErrorCode, m: &str| {
        ResponseKind::AlterClientQuotas(
            AlterClientQuotasResponse::default().with_entries(
                entities
                    .into_iter()
                    .map(|entity| {
                        alter::EntryData::default()
                            .with_entity(entity)
                            .with_error_code(code.code())
                            .with_error_message(Some(StrBytes::from_string(m.to_string())))
                    })
                    .collect(),
            ),
        )
    };
    match super::security::forwarded(
        broker,
        ctx,
        AclOperation::AlterConfigs,
        RequestKind::AlterClientQuotas(r),
        refused,
    )
    .await
    {
        ResponseKind::AlterClientQuotas(r) => r,
        _ => AlterClientQuotasResponse::default(),
    }
}

/// How one component of a DescribeClientQuotas filter matches.
enum Match {
    Exact(String),
    Default,
    Any,
}

pub(super) fn describe_client_quotas(
    broker: &Broker,
    ctx: &RequestContext,
    r: DescribeClientQuotasRequest,
) -> DescribeClientQuotasResponse {
    let refuse = |code: ErrorCode, m: &str| {
        DescribeClientQuotasResponse::default()
            .with_error_code(code.code())
            .with_error_message(Some(StrBytes::from_string(m.to_string())))
    };
    let image = broker.image();
    if !broker.authorized_cluster(ctx, &image, AclOperation::DescribeConfigs) {
        return refuse(
            ErrorCode::ClusterAuthorizationFailed,
            "Cluster authorization failed",
        );
    }
    let mut filter: Vec<(String, Match)> = Vec::new();
    for c in &r.components {
        let t = c.entity_type.to_string();
        if !QUOTA_ENTITY_TYPES.contains(&t.as_str()) {
            return refuse(
                ErrorCode::InvalidRequest,
                &format!("Custom entity type '{t}' not supported"),
            );
        }
        if filter.iter().any(|(f, _)| *f == t) {
            return refuse(
                ErrorCode::InvalidRequest,
                &format!("Duplicate {t} filter component entity type"),
            );
        }
        // As Kafka's ClientQuotasImage: EXACT needs a name, DEFAULT and SPECIFIED take none.
        let m = match (c.match_type, &c._match) {
            (0, Some(name)) => Match::Exact(name.to_string()),
            (1, None) => Match::Default,
            (2, None) => Match::Any,
            (0, None) => {
                return refuse(ErrorCode::InvalidRequest, &format!("Request specified MATCH_TYPE_EXACT, but no match string for entity type {t}"))
            }
            (1 | 2, Some(_)) => {
                return refuse(ErrorCode::InvalidRequest, &format!("Request specified a match string for entity type {t} with a match type that takes none"))
            }
            (other, _) => return refuse(ErrorCode::InvalidRequest, &format!("Unknown match type {other}")),
        };
        filter.push((t, m));
    }
    if filter.iter().any(|(t, _)| t == "ip") && filter.len() > 1 {
        return refuse(
            ErrorCode::InvalidRequest,
            "Invalid entity filter component combination: ip with user or client-id",
        );
    }
    let matches = |e: &QuotaEntity| {
        if r.strict && e.len() != filter.len() {
            return false;
        }
        filter.iter().all(|(t, m)| match (e.get(t), m) {
            (Some(Some(n)), Match::Exact(x)) => n == x,
            (Some(None), Match::Default) => true,
            (Some(_), Match::Any) => true,
            _ => false,
        })
    };
    let entries = image
        .client_quotas
        .entities
        .iter()
        .filter(|(e, _)| matches(e))
        .map(|(e, values)| {
            EntryData::default()
                .with_entity(
                    e.iter()
                        .map(|(t, n)| {
                            EntityData::default()
                                .with_entity_type(StrBytes::from_string(t.clone()))
                                .with_entity_name(n.clone().map(StrBytes::from_string))
                        })
                        .collect(),
                )
                .with_values(
                    values
                        .iter()
                        .map(|(k, v)| {
                            ValueData::default()
                                .with_key(StrBytes::from_string(k.clone()))
                                .with_value(v.0)
                        })
                        .collect(),
                )
        })
        .collect();
    DescribeClientQuotasResponse::default().with_entries(Some(entries))
}
