//! Client quotas (Kafka's `ClientQuotaControlManager`): AlterClientQuotas as quota records, for
//! user, client-id, user + client-id and ip entities and their defaults.

use kafka_protocol::messages::alter_client_quotas_request::EntryData;
use kafka_protocol::messages::alter_client_quotas_response::{self as resp};
use kafka_protocol::messages::{AlterClientQuotasRequest, AlterClientQuotasResponse};
use kafka_protocol::protocol::StrBytes;
use odradek_common::ErrorCode;
use odradek_metadata::proto::{self, metadata_record::Record};
use odradek_metadata::MetadataImage;

use super::{rec, ControllerResult};

/// The quota keys of user and client-id entities, with whether their value is a whole number.
pub const CLIENT_QUOTA_KEYS: [(&str, bool); 4] = [
    ("producer_byte_rate", true),
    ("consumer_byte_rate", true),
    ("request_percentage", false),
    ("controller_mutation_rate", false),
];

/// The quota key of ip entities.
pub const IP_QUOTA_KEY: &str = "connection_creation_rate";

fn check_entry(e: &EntryData) -> Result<Vec<proto::MetadataRecord>, String> {
    let mut types: Vec<&str> = Vec::new();
    for part in &e.entity {
        let t = part.entity_type.as_str();
        if !["user", "client-id", "ip"].contains(&t) {
            return Err(format!("Unhandled client quota entity type: {t}"));
        }
        if types.contains(&t) {
            return Err(format!("Duplicate {t} entity type in the quota entity"));
        }
        if part.entity_name.as_ref().is_some_and(|n| n.is_empty()) {
            return Err(format!("Empty {t} not supported"));
        }
        if t == "ip" {
            if let Some(name) = &part.entity_name {
                if name.parse::<std::net::IpAddr>().is_err() {
                    return Err(format!("{name} is not a valid IP address"));
                }
            }
        }
        types.push(t);
    }
    if types.is_empty() {
        return Err("Invalid empty client quota entity".into());
    }
    let ip = types.contains(&"ip");
    if ip && types.len() > 1 {
        return Err("An ip quota entity cannot be combined with user or client-id".into());
    }
    let mut records = Vec::new();
    let mut keys = std::collections::BTreeSet::new();
    for op in &e.ops {
        let key = op.key.as_str();
        if !keys.insert(key) {
            return Err(format!(
                "Duplicate quota key {key} not updating quota for this entity"
            ));
        }
        let whole = if ip {
            (key == IP_QUOTA_KEY).then_some(true)
        } else {
            CLIENT_QUOTA_KEYS
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, w)| *w)
        };
        let Some(whole) = whole else {
            return Err(format!("Invalid configuration key {key}"));
        };
        if !op.remove {
            if !op.value.is_finite() || op.value <= 0.0 {
                return Err(format!(
                    "Configuration {key} must be a positive value, not {}",
                    op.value
                ));
            }
            if whole && op.value.fract() != 0.0 {
                return Err(format!("Configuration {key} must be a Long value"));
            }
        }
        records.push(rec(Record::ClientQuota(proto::ClientQuotaRecord {
            entity: e
                .entity
                .iter()
                .map(|p| proto::QuotaEntityPart {
                    entity_type: p.entity_type.to_string(),
                    entity_name: p.entity_name.as_ref().map(|n| n.to_string()),
                })
                .collect(),
            key: key.to_string(),
            value: if op.remove { 0.0 } else { op.value },
            remove: op.remove,
        })));
    }
    Ok(records)
}

/// AlterClientQuotas: each entry applies whole or fails with INVALID_REQUEST; `validate_only`
/// commits nothing.
pub fn alter_client_quotas(
    _image: &MetadataImage,
    req: &AlterClientQuotasRequest,
) -> ControllerResult<AlterClientQuotasResponse> {
    let mut records = Vec::new();
    let mut entries = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for e in &req.entries {
        let mut key: Vec<(String, Option<String>)> = e
            .entity
            .iter()
            .map(|p| {
                (
                    p.entity_type.to_string(),
                    p.entity_name.as_ref().map(|n| n.to_string()),
                )
            })
            .collect();
        key.sort();
        let duplicate = !seen.insert(key);
        let entity = e
            .entity
            .iter()
            .map(|p| {
                resp::EntityData::default()
                    .with_entity_type(p.entity_type.clone())
                    .with_entity_name(p.entity_name.clone())
            })
            .collect();
        let out = resp::EntryData::default().with_entity(entity);
        let checked = if duplicate {
            Err("Ignoring duplicate entity".to_string())
        } else {
            check_entry(e)
        };
        entries.push(match checked {
            Ok(r) => {
                if !req.validate_only {
                    records.extend(r);
                }
                out
            }
            Err(m) => out
                .with_error_code(ErrorCode::InvalidRequest.code())
                .with_error_message(Some(StrBytes::from_string(m))),
        });
    }
    ControllerResult {
        records,
        response: AlterClientQuotasResponse::default().with_entries(entries),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::alter_client_quotas_request::{EntityData, OpData};

    fn entry(parts: &[(&str, Option<&str>)], key: &str, value: f64) -> EntryData {
        EntryData::default()
            .with_entity(
                parts
                    .iter()
                    .map(|(t, n)| {
                        EntityData::default()
                            .with_entity_type(StrBytes::from_string(t.to_string()))
                            .with_entity_name(n.map(|n| StrBytes::from_string(n.to_string())))
                    })
                    .collect(),
            )
            .with_ops(vec![OpData::default()
                .with_key(StrBytes::from_string(key.into()))
                .with_value(value)])
    }

    #[test]
    fn entities_keys_and_values_are_checked() {
        let image = MetadataImage::empty();
        let req = AlterClientQuotasRequest::default().with_entries(vec![
            entry(&[("user", Some("alice"))], "producer_byte_rate", 1024.0),
            entry(
                &[("user", None), ("client-id", Some("c"))],
                "request_percentage",
                12.5,
            ),
            entry(&[("user", Some("a"))], "producer_byte_rate", 1.5),
            entry(&[("ip", Some("nope"))], IP_QUOTA_KEY, 10.0),
            entry(&[("ip", None), ("user", None)], IP_QUOTA_KEY, 10.0),
            entry(&[("group", Some("g"))], "producer_byte_rate", 10.0),
            entry(&[("user", Some("a"))], "bogus", 10.0),
        ]);
        let r = alter_client_quotas(&image, &req);
        let codes: Vec<i16> = r.response.entries.iter().map(|e| e.error_code).collect();
        assert_eq!(codes, vec![0, 0, 42, 42, 42, 42, 42]);
        assert_eq!(r.records.len(), 2);
        let dry = alter_client_quotas(&image, &req.clone().with_validate_only(true));
        assert!(dry.records.is_empty());
    }
}
