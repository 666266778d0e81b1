//! ACLs (Kafka's `AclControlManager`): CreateAcls and DeleteAcls as ACL records. Brokers
//! authorize with the ACLs of their image; DescribeAcls is answered there.

use std::collections::BTreeSet;

use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::{
    CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse,
};
use kafka_protocol::protocol::StrBytes;
use odradek_common::{ErrorCode, Uuid};
use odradek_metadata::acl::{
    AclFilter, AclOperation, AclPermission, PatternType, ResourceType, StandardAcl, CLUSTER_NAME,
};
use odradek_metadata::proto::{self, metadata_record::Record};
use odradek_metadata::MetadataImage;

use super::{rec, ControllerResult};

/// The ACL of a creation, or why it is not a valid one.
pub fn acl_of_creation(c: &AclCreation) -> Result<StandardAcl, String> {
    let resource_type = match ResourceType::from_code(c.resource_type) {
        Some(t) if !matches!(t, ResourceType::Any | ResourceType::Unknown) => t,
        _ => return Err(format!("Invalid resourceType {}", c.resource_type)),
    };
    let pattern_type = match PatternType::from_code(c.resource_pattern_type) {
        Some(p @ (PatternType::Literal | PatternType::Prefixed)) => p,
        _ => return Err(format!("Invalid patternType {}", c.resource_pattern_type)),
    };
    let operation = match AclOperation::from_code(c.operation) {
        Some(o) if !matches!(o, AclOperation::Any | AclOperation::Unknown) => o,
        _ => return Err(format!("Invalid operation {}", c.operation)),
    };
    let permission = match AclPermission::from_code(c.permission_type) {
        Some(p @ (AclPermission::Allow | AclPermission::Deny)) => p,
        _ => return Err(format!("Invalid permissionType {}", c.permission_type)),
    };
    if c.resource_name.is_empty() {
        return Err("Resource name should not be empty".into());
    }
    if resource_type == ResourceType::Cluster && c.resource_name.as_str() != CLUSTER_NAME {
        return Err(format!(
            "The only valid name for the CLUSTER resource is {CLUSTER_NAME}"
        ));
    }
    match c.principal.split_once(':') {
        Some((t, n)) if !t.is_empty() && !n.is_empty() => {}
        _ => {
            return Err(format!(
                "Could not parse principal {:?} (expected Type:name)",
                c.principal.as_str()
            ))
        }
    }
    if c.host.is_empty() {
        return Err("Invalid host: it should not be empty".into());
    }
    Ok(StandardAcl {
        resource_type,
        resource_name: c.resource_name.to_string(),
        pattern_type,
        principal: c.principal.to_string(),
        host: c.host.to_string(),
        operation,
        permission,
    })
}

/// CreateAcls: one result per creation; an ACL that exists already succeeds without a record.
pub fn create_acls(
    image: &MetadataImage,
    req: &CreateAclsRequest,
    new_id: &mut dyn FnMut() -> Uuid,
) -> ControllerResult<CreateAclsResponse> {
    let mut existing: BTreeSet<StandardAcl> = image.acls.acls.values().cloned().collect();
    let mut records = Vec::new();
    let mut results = Vec::new();
    for c in &req.creations {
        let result = match acl_of_creation(c) {
            Ok(acl) => {
                if existing.insert(acl.clone()) {
                    records.push(acl_record(new_id(), &acl));
                }
                AclCreationResult::default()
            }
            Err(e) => AclCreationResult::default()
                .with_error_code(ErrorCode::InvalidRequest.code())
                .with_error_message(Some(StrBytes::from_string(e))),
        };
        results.push(result);
    }
    ControllerResult {
        records,
        response: CreateAclsResponse::default().with_results(results),
    }
}

/// The record of one ACL.
pub fn acl_record(id: Uuid, a: &StandardAcl) -> proto::MetadataRecord {
    rec(Record::AccessControlEntry(
        proto::AccessControlEntryRecord {
            id: id.as_bytes().to_vec(),
            resource_type: i32::from(a.resource_type.code()),
            resource_name: a.resource_name.clone(),
            pattern_type: i32::from(a.pattern_type.code()),
            principal: a.principal.clone(),
            host: a.host.clone(),
            operation: i32::from(a.operation.code()),
            permission_type: i32::from(a.permission.code()),
        },
    ))
}

/// The filter of a DeleteAcls (or DescribeAcls) filter, or why it is not valid.
pub fn filter_of(f: &DeleteAclsFilter) -> Result<AclFilter, String> {
    acl_filter(
        f.resource_type_filter,
        f.resource_name_filter.as_ref().map(|s| s.to_string()),
        f.pattern_type_filter,
        f.principal_filter.as_ref().map(|s| s.to_string()),
        f.host_filter.as_ref().map(|s| s.to_string()),
        f.operation,
        f.permission_type,
    )
}

/// A filter from the wire's fields, refusing UNKNOWN values as Kafka does.
pub fn acl_filter(
    resource_type: i8,
    resource_name: Option<String>,
    pattern_type: i8,
    principal: Option<String>,
    host: Option<String>,
    operation: i8,
    permission: i8,
) -> Result<AclFilter, String> {
    let filter = AclFilter {
        resource_type: ResourceType::from_code(resource_type)
            .filter(|t| *t != ResourceType::Unknown)
            .ok_or_else(|| format!("Invalid resourceType {resource_type}"))?,
        resource_name,
        pattern_type: PatternType::from_code(pattern_type)
            .filter(|p| *p != PatternType::Unknown)
            .ok_or_else(|| format!("Invalid patternType {pattern_type}"))?,
        principal,
        host,
        operation: AclOperation::from_code(operation)
            .filter(|o| *o != AclOperation::Unknown)
            .ok_or_else(|| format!("Invalid operation {operation}"))?,
        permission: AclPermission::from_code(permission)
            .filter(|p| *p != AclPermission::Unknown)
            .ok_or_else(|| format!("Invalid permissionType {permission}"))?,
    };
    Ok(filter)
}

/// DeleteAcls: per filter, the ACLs it matched, each removed once.
pub fn delete_acls(
    image: &MetadataImage,
    req: &DeleteAclsRequest,
) -> ControllerResult<DeleteAclsResponse> {
    let mut removed: BTreeSet<Uuid> = BTreeSet::new();
    let mut records = Vec::new();
    let mut results = Vec::new();
    for f in &req.filters {
        let filter = match filter_of(f) {
            Ok(f) => f,
            Err(e) => {
                results.push(
                    DeleteAclsFilterResult::default()
                        .with_error_code(ErrorCode::InvalidRequest.code())
                        .with_error_message(Some(StrBytes::from_string(e))),
                );
                continue;
            }
        };
        let mut matching = Vec::new();
        for (id, acl) in &image.acls.acls {
            if !filter.matches(acl) {
                continue;
            }
            if removed.insert(*id) {
                records.push(rec(Record::RemoveAccessControlEntry(
                    proto::RemoveAccessControlEntryRecord {
                        id: id.as_bytes().to_vec(),
                    },
                )));
            }
            matching.push(
                DeleteAclsMatchingAcl::default()
                    .with_resource_type(acl.resource_type.code())
                    .with_resource_name(StrBytes::from_string(acl.resource_name.clone()))
                    .with_pattern_type(acl.pattern_type.code())
                    .with_principal(StrBytes::from_string(acl.principal.clone()))
                    .with_host(StrBytes::from_string(acl.host.clone()))
                    .with_operation(acl.operation.code())
                    .with_permission_type(acl.permission.code()),
            );
        }
        results.push(DeleteAclsFilterResult::default().with_matching_acls(matching));
    }
    ControllerResult {
        records,
        response: DeleteAclsResponse::default().with_filter_results(results),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use odradek_metadata::MetadataDelta;
    use std::sync::Arc;

    fn creation(name: &str, pattern: PatternType, op: AclOperation) -> AclCreation {
        AclCreation::default()
            .with_resource_type(ResourceType::Topic.code())
            .with_resource_name(StrBytes::from_string(name.into()))
            .with_resource_pattern_type(pattern.code())
            .with_principal(StrBytes::from_static_str("User:alice"))
            .with_host(StrBytes::from_static_str("*"))
            .with_operation(op.code())
            .with_permission_type(AclPermission::Allow.code())
    }

    #[test]
    fn creates_validates_deduplicates_and_deletes_by_filter() {
        let mut n = 0u128;
        let mut ids = || {
            n += 1;
            Uuid::from_slice(&n.to_be_bytes()).expect("16 bytes")
        };
        let image = MetadataImage::empty();
        let req = CreateAclsRequest::default().with_creations(vec![
            creation("orders", PatternType::Literal, AclOperation::Read),
            creation("orders", PatternType::Literal, AclOperation::Read),
            creation("pay", PatternType::Prefixed, AclOperation::Write),
            creation("x", PatternType::Match, AclOperation::Read),
            creation("x", PatternType::Literal, AclOperation::Any),
        ]);
        let r = create_acls(&image, &req, &mut ids);
        let codes: Vec<i16> = r.response.results.iter().map(|x| x.error_code).collect();
        assert_eq!(codes, vec![0, 0, 0, 42, 42]);
        assert_eq!(r.records.len(), 2, "the duplicate makes no record");
        let mut d = MetadataDelta::new(Arc::new(image));
        for (i, rec) in r.records.iter().enumerate() {
            d.replay(i as i64, rec).expect("replays");
        }
        let image = d.apply();
        assert_eq!(image.acls.acls.len(), 2);
        let del = DeleteAclsRequest::default().with_filters(vec![DeleteAclsFilter::default()
            .with_resource_type_filter(ResourceType::Any.code())
            .with_pattern_type_filter(PatternType::Match.code())
            .with_resource_name_filter(Some(StrBytes::from_static_str("payments")))
            .with_principal_filter(None)
            .with_host_filter(None)
            .with_operation(AclOperation::Any.code())
            .with_permission_type(AclPermission::Any.code())]);
        let r = delete_acls(&image, &del);
        assert_eq!(r.response.filter_results[0].matching_acls.len(), 1);
        assert_eq!(r.records.len(), 1);
        let cluster = AclCreation::default()
            .with_resource_type(ResourceType::Cluster.code())
            .with_resource_name(StrBytes::from_static_str("other"))
            .with_resource_pattern_type(PatternType::Literal.code())
            .with_principal(StrBytes::from_static_str("User:a"))
            .with_host(StrBytes::from_static_str("*"))
            .with_operation(AclOperation::Alter.code())
            .with_permission_type(AclPermission::Allow.code());
        assert!(acl_of_creation(&cluster).is_err());
    }
}
