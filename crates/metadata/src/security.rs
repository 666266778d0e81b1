//! The security sub-images: SCRAM credentials, ACLs and client quotas, each replayed from its
//! records as Kafka's `ScramImage`, `AclsImage` and `ClientQuotasImage` are.

use std::collections::BTreeMap;

use odradek_common::scram::{ScramCredential, ScramMechanism};
use odradek_common::Uuid;

use crate::acl::{AclOperation, AclPermission, PatternType, ResourceType, StandardAcl};
use crate::proto;

/// SCRAM credentials: user -> mechanism -> credential.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScramImage {
    /// The credentials; users without any are absent.
    pub users: BTreeMap<String, BTreeMap<ScramMechanism, ScramCredential>>,
}

impl ScramImage {
    pub(crate) fn replay_set(
        &mut self,
        r: &proto::UserScramCredentialRecord,
    ) -> Result<(), String> {
        let mechanism = mechanism(r.mechanism)?;
        if r.name.is_empty() {
            return Err("SCRAM credential without a user name".into());
        }
        self.users.entry(r.name.clone()).or_default().insert(
            mechanism,
            ScramCredential {
                salt: r.salt.clone(),
                stored_key: r.stored_key.clone(),
                server_key: r.server_key.clone(),
                iterations: r.iterations,
            },
        );
        Ok(())
    }

    pub(crate) fn replay_remove(
        &mut self,
        r: &proto::RemoveUserScramCredentialRecord,
    ) -> Result<(), String> {
        let mechanism = mechanism(r.mechanism)?;
        let Some(m) = self.users.get_mut(&r.name) else {
            return Err(format!(
                "no SCRAM credential of user {:?} to remove",
                r.name
            ));
        };
        if m.remove(&mechanism).is_none() {
            return Err(format!(
                "user {:?} has no {mechanism} credential to remove",
                r.name
            ));
        }
        if m.is_empty() {
            self.users.remove(&r.name);
        }
        Ok(())
    }

    pub(crate) fn records(&self) -> Vec<proto::UserScramCredentialRecord> {
        self.users
            .iter()
            .flat_map(|(name, m)| {
                m.iter()
                    .map(|(mechanism, c)| proto::UserScramCredentialRecord {
                        name: name.clone(),
                        mechanism: mechanism.type_id() as u32,
                        salt: c.salt.clone(),
                        stored_key: c.stored_key.clone(),
                        server_key: c.server_key.clone(),
                        iterations: c.iterations,
                    })
            })
            .collect()
    }
}

fn mechanism(id: u32) -> Result<ScramMechanism, String> {
    i8::try_from(id)
        .ok()
        .and_then(ScramMechanism::from_type_id)
        .ok_or_else(|| format!("unknown SCRAM mechanism type {id}"))
}

/// ACLs by id.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AclsImage {
    /// Every ACL.
    pub acls: BTreeMap<Uuid, StandardAcl>,
}

impl AclsImage {
    pub(crate) fn replay_set(&mut self, r: &proto::AccessControlEntryRecord) -> Result<(), String> {
        let id = Uuid::from_slice(&r.id).ok_or("ACL id is not 16 bytes")?;
        let small = |v: i32, what: &str| {
            i8::try_from(v).map_err(|_| format!("ACL {what} {v} out of range"))
        };
        let acl = StandardAcl {
            resource_type: ResourceType::from_code(small(r.resource_type, "resource type")?)
                .ok_or_else(|| format!("unknown ACL resource type {}", r.resource_type))?,
            resource_name: r.resource_name.clone(),
            pattern_type: PatternType::from_code(small(r.pattern_type, "pattern type")?)
                .ok_or_else(|| format!("unknown ACL pattern type {}", r.pattern_type))?,
            principal: r.principal.clone(),
            host: r.host.clone(),
            operation: AclOperation::from_code(small(r.operation, "operation")?)
                .ok_or_else(|| format!("unknown ACL operation {}", r.operation))?,
            permission: AclPermission::from_code(small(r.permission_type, "permission")?)
                .ok_or_else(|| format!("unknown ACL permission {}", r.permission_type))?,
        };
        self.acls.insert(id, acl);
        Ok(())
    }

    pub(crate) fn replay_remove(
        &mut self,
        r: &proto::RemoveAccessControlEntryRecord,
    ) -> Result<(), String> {
        let id = Uuid::from_slice(&r.id).ok_or("ACL id is not 16 bytes")?;
        self.acls
            .remove(&id)
            .map(|_| ())
            .ok_or_else(|| format!("no ACL {id} to remove"))
    }

    pub(crate) fn records(&self) -> Vec<proto::AccessControlEntryRecord> {
        self.acls
            .iter()
            .map(|(id, a)| proto::AccessControlEntryRecord {
                id: id.as_bytes().to_vec(),
                resource_type: i32::from(a.resource_type.code()),
                resource_name: a.resource_name.clone(),
                pattern_type: i32::from(a.pattern_type.code()),
                principal: a.principal.clone(),
                host: a.host.clone(),
                operation: i32::from(a.operation.code()),
                permission_type: i32::from(a.permission.code()),
            })
            .collect()
    }
}

/// A client quota entity: `(type, name)` parts in type order; a `None` name is that type's
/// default (`<default>`).
pub type QuotaEntity = BTreeMap<String, Option<String>>;

/// A quota value, compared by its bits (so images stay `Eq`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuotaValue(pub f64);

impl Eq for QuotaValue {}

/// Client quotas: entity -> key (`producer_byte_rate`, `consumer_byte_rate`,
/// `request_percentage`, ...) -> value.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ClientQuotasImage {
    /// Entities with at least one quota.
    pub entities: BTreeMap<QuotaEntity, BTreeMap<String, QuotaValue>>,
}

/// The entity types of client quotas.
pub const QUOTA_ENTITY_TYPES: [&str; 3] = ["user", "client-id", "ip"];

impl ClientQuotasImage {
    pub(crate) fn replay(&mut self, r: &proto::ClientQuotaRecord) -> Result<(), String> {
        let mut entity = QuotaEntity::new();
        for part in &r.entity {
            if !QUOTA_ENTITY_TYPES.contains(&part.entity_type.as_str()) {
                return Err(format!("unknown quota entity type {:?}", part.entity_type));
            }
            if entity
                .insert(part.entity_type.clone(), part.entity_name.clone())
                .is_some()
            {
                return Err(format!("quota entity type {:?} twice", part.entity_type));
            }
        }
        if entity.is_empty() || r.key.is_empty() {
            return Err("client quota record without entity or key".into());
        }
        if r.remove {
            if let Some(keys) = self.entities.get_mut(&entity) {
                keys.remove(&r.key);
                if keys.is_empty() {
                    self.entities.remove(&entity);
                }
            }
        } else {
            if !r.value.is_finite() || r.value <= 0.0 {
                return Err(format!("quota {} of {} is not positive", r.key, r.value));
            }
            self.entities
                .entry(entity)
                .or_default()
                .insert(r.key.clone(), QuotaValue(r.value));
        }
        Ok(())
    }

    pub(crate) fn records(&self) -> Vec<proto::ClientQuotaRecord> {
        self.entities
            .iter()
            .flat_map(|(entity, keys)| {
                keys.iter()
                    .map(move |(key, value)| proto::ClientQuotaRecord {
                        entity: entity
                            .iter()
                            .map(|(t, n)| proto::QuotaEntityPart {
                                entity_type: t.clone(),
                                entity_name: n.clone(),
                            })
                            .collect(),
                        key: key.clone(),
                        value: value.0,
                        remove: false,
                    })
            })
            .collect()
    }
}
