//! Admin calls of security: ACLs, SCRAM credentials (salted here, as Kafka's admin client
//! does: the password never leaves the client) and client quotas.

use bytes::Bytes;
use kafka_protocol::messages::alter_client_quotas_request::{EntityData, EntryData, OpData};
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::{
    AlterClientQuotasRequest, AlterUserScramCredentialsRequest, ApiKey, CreateAclsRequest,
    DeleteAclsRequest, DescribeAclsRequest, DescribeClientQuotasRequest,
    DescribeUserScramCredentialsRequest,
};
use kafka_protocol::protocol::StrBytes;
use odradek_common::scram::ScramMechanism;

use crate::client::Client;
use crate::error::ClientError;

/// One ACL, with Kafka's numbers for its enums (resource type 2 topic, 3 group, 4 cluster,
/// 5 transactional id; pattern 3 literal, 4 prefixed; operations 2..=15; permission 2 deny,
/// 3 allow). As a filter, 1 is ANY, pattern 2 MATCH, and `None` strings match anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclEntry {
    /// Resource type.
    pub resource_type: i8,
    /// Resource name (or prefix).
    pub resource_name: Option<String>,
    /// Pattern type.
    pub pattern_type: i8,
    /// `User:name`.
    pub principal: Option<String>,
    /// Host or `*`.
    pub host: Option<String>,
    /// Operation.
    pub operation: i8,
    /// Permission.
    pub permission: i8,
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn check(code: i16, message: Option<&StrBytes>) -> Result<(), ClientError> {
    ClientError::check(code, message.map(|m| m.to_string()))
}

/// A client quota entity: (type, name), `None` for the type's default.
pub type QuotaEntityParts = Vec<(String, Option<String>)>;

impl Client {
    /// CreateAcls.
    pub async fn create_acls(&mut self, acls: &[AclEntry]) -> Result<(), ClientError> {
        let req = CreateAclsRequest::default().with_creations(
            acls.iter()
                .map(|a| {
                    AclCreation::default()
                        .with_resource_type(a.resource_type)
                        .with_resource_name(s(a.resource_name.as_deref().unwrap_or("")))
                        .with_resource_pattern_type(a.pattern_type)
                        .with_principal(s(a.principal.as_deref().unwrap_or("")))
                        .with_host(s(a.host.as_deref().unwrap_or("*")))
                        .with_operation(a.operation)
                        .with_permission_type(a.permission)
                })
                .collect(),
        );
        let resp = self.send_any(&req, ApiKey::CreateAcls, 3).await?;
        for r in &resp.results {
            check(r.error_code, r.error_message.as_ref())?;
        }
        Ok(())
    }

    /// DescribeAcls: the ACLs matching `filter`.
    pub async fn describe_acls(&mut self, f: &AclEntry) -> Result<Vec<AclEntry>, ClientError> {
        let req = DescribeAclsRequest::default()
            .with_resource_type_filter(f.resource_type)
            .with_resource_name_filter(f.resource_name.as_deref().map(s))
            .with_pattern_type_filter(f.pattern_type)
            .with_principal_filter(f.principal.as_deref().map(s))
            .with_host_filter(f.host.as_deref().map(s))
            .with_operation(f.operation)
            .with_permission_type(f.permission);
        let resp = self.send_any(&req, ApiKey::DescribeAcls, 3).await?;
        check(resp.error_code, resp.error_message.as_ref())?;
        Ok(resp
            .resources
            .iter()
            .flat_map(|r| {
                r.acls.iter().map(move |a| AclEntry {
                    resource_type: r.resource_type,
                    resource_name: Some(r.resource_name.to_string()),
                    pattern_type: r.pattern_type,
                    principal: Some(a.principal.to_string()),
                    host: Some(a.host.to_string()),
                    operation: a.operation,
                    permission: a.permission_type,
                })
            })
            .collect())
    }

    /// DeleteAcls: removes the ACLs matching each filter; returns those removed.
    pub async fn delete_acls(
        &mut self,
        filters: &[AclEntry],
    ) -> Result<Vec<AclEntry>, ClientError> {
        let req = DeleteAclsRequest::default().with_filters(
            filters
                .iter()
                .map(|f| {
                    DeleteAclsFilter::default()
                        .with_resource_type_filter(f.resource_type)
                        .with_resource_name_filter(f.resource_name.as_deref().map(s))
                        .with_pattern_type_filter(f.pattern_type)
                        .with_principal_filter(f.principal.as_deref().map(s))
                        .with_host_filter(f.host.as_deref().map(s))
                        .with_operation(f.operation)
                        .with_permission_type(f.permission)
                })
                .collect(),
        );
        let resp = self.send_any(&req, ApiKey::DeleteAcls, 3).await?;
        let mut removed = Vec::new();
        for r in &resp.filter_results {
            check(r.error_code, r.error_message.as_ref())?;
            removed.extend(r.matching_acls.iter().map(|a| AclEntry {
                resource_type: a.resource_type,
                resource_name: Some(a.resource_name.to_string()),
                pattern_type: a.pattern_type,
                principal: Some(a.principal.to_string()),
                host: Some(a.host.to_string()),
                operation: a.operation,
                permission: a.permission_type,
            }));
        }
        Ok(removed)
    }

    /// Sets `user`'s SCRAM credential: salted here with a random salt.
    pub async fn set_scram_credential(
        &mut self,
        user: &str,
        mechanism: ScramMechanism,
        password: &str,
        iterations: u32,
    ) -> Result<(), ClientError> {
        let mut salt = vec![0u8; 32];
        getrandom::getrandom(&mut salt)
            .map_err(|e| ClientError::Protocol(format!("no random salt: {e}")))?;
        let salted = mechanism.salted_password(password.as_bytes(), &salt, iterations);
        let req = AlterUserScramCredentialsRequest::default().with_upsertions(vec![
            ScramCredentialUpsertion::default()
                .with_name(s(user))
                .with_mechanism(mechanism.type_id())
                .with_iterations(i32::try_from(iterations).unwrap_or(i32::MAX))
                .with_salt(Bytes::from(salt))
                .with_salted_password(Bytes::from(salted)),
        ]);
        let resp = self
            .send_any(&req, ApiKey::AlterUserScramCredentials, 0)
            .await?;
        for r in &resp.results {
            check(r.error_code, r.error_message.as_ref())?;
        }
        Ok(())
    }

    /// Deletes `user`'s SCRAM credential for `mechanism`.
    pub async fn delete_scram_credential(
        &mut self,
        user: &str,
        mechanism: ScramMechanism,
    ) -> Result<(), ClientError> {
        let req = AlterUserScramCredentialsRequest::default().with_deletions(vec![
            ScramCredentialDeletion::default()
                .with_name(s(user))
                .with_mechanism(mechanism.type_id()),
        ]);
        let resp = self
            .send_any(&req, ApiKey::AlterUserScramCredentials, 0)
            .await?;
        for r in &resp.results {
            check(r.error_code, r.error_message.as_ref())?;
        }
        Ok(())
    }

    /// The SCRAM mechanisms and iterations of `users` (every user when `None`).
    pub async fn describe_scram_credentials(
        &mut self,
        users: Option<&[String]>,
    ) -> Result<Vec<(String, Vec<(i8, i32)>)>, ClientError> {
        let req = DescribeUserScramCredentialsRequest::default().with_users(users.map(|u| {
            u.iter()
                .map(|n| UserName::default().with_name(s(n)))
                .collect()
        }));
        let resp = self
            .send_any(&req, ApiKey::DescribeUserScramCredentials, 0)
            .await?;
        check(resp.error_code, resp.error_message.as_ref())?;
        let mut out = Vec::new();
        for r in &resp.results {
            check(r.error_code, r.error_message.as_ref())?;
            out.push((
                r.user.to_string(),
                r.credential_infos
                    .iter()
                    .map(|c| (c.mechanism, c.iterations))
                    .collect(),
            ));
        }
        Ok(out)
    }

    /// AlterClientQuotas of one entity: sets `set` and removes `remove`.
    pub async fn alter_client_quotas(
        &mut self,
        entity: &QuotaEntityParts,
        set: &[(String, f64)],
        remove: &[String],
    ) -> Result<(), ClientError> {
        let ops = set
            .iter()
            .map(|(k, v)| OpData::default().with_key(s(k)).with_value(*v))
            .chain(
                remove
                    .iter()
                    .map(|k| OpData::default().with_key(s(k)).with_remove(true)),
            )
            .collect();
        let req = AlterClientQuotasRequest::default().with_entries(vec![EntryData::default()
            .with_entity(
                entity
                    .iter()
                    .map(|(t, n)| {
                        EntityData::default()
                            .with_entity_type(s(t))
                            .with_entity_name(n.as_deref().map(s))
                    })
                    .collect(),
            )
            .with_ops(ops)]);
        let resp = self.send_any(&req, ApiKey::AlterClientQuotas, 1).await?;
        for e in &resp.entries {
            check(e.error_code, e.error_message.as_ref())?;
        }
        Ok(())
    }

    /// DescribeClientQuotas: entities matching the components (type, exact name or `None`
    /// for the default; an empty list: every entity), with their quotas.
    pub async fn describe_client_quotas(
        &mut self,
        components: &QuotaEntityParts,
    ) -> Result<Vec<(QuotaEntityParts, Vec<(String, f64)>)>, ClientError> {
        let req = DescribeClientQuotasRequest::default().with_components(
            components
                .iter()
                .map(|(t, n)| {
                    ComponentData::default()
                        .with_entity_type(s(t))
                        .with_match_type(if n.is_some() { 0 } else { 1 })
                        .with_match(n.as_deref().map(s))
                })
                .collect(),
        );
        let resp = self.send_any(&req, ApiKey::DescribeClientQuotas, 1).await?;
        check(resp.error_code, resp.error_message.as_ref())?;
        Ok(resp
            .entries
            .unwrap_or_default()
            .iter()
            .map(|e| {
                (
                    e.entity
                        .iter()
                        .map(|p| {
                            (
                                p.entity_type.to_string(),
                                p.entity_name.as_ref().map(|n| n.to_string()),
                            )
                        })
                        .collect(),
                    e.values
                        .iter()
                        .map(|v| (v.key.to_string(), v.value))
                        .collect(),
                )
            })
            .collect())
    }
}
