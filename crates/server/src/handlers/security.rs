//! ACLs and SCRAM credentials: CreateAcls, DeleteAcls and AlterUserScramCredentials go to the
//! controller in an envelope; DescribeAcls and DescribeUserScramCredentials are answered from
//! this broker's image. Each needs ALTER (or DESCRIBE) on the cluster.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    ApiKey, DescribeAclsRequest, DescribeAclsResponse, DescribeUserScramCredentialsRequest,
    DescribeUserScramCredentialsResponse, RequestKind, ResponseKind,
};
use kafka_protocol::protocol::StrBytes;
use odradek_common::ErrorCode;
use odradek_controller::managers::acls::acl_filter;
use odradek_controller::pb;
use odradek_frontend::RequestContext;
use odradek_metadata::acl::AclOperation;

use super::Broker;

/// Forwards `request` to the active controller (Kafka's Envelope) and returns its response,
/// once this broker's metadata has caught up with what it committed. `Err` carries the error
/// for every item of the request.
pub(crate) async fn forward(
    broker: &Broker,
    ctx: &RequestContext,
    request: RequestKind,
) -> Result<ResponseKind, (ErrorCode, String)> {
    let mut body = BytesMut::new();
    request
        .encode(&mut body, ctx.api_version)
        .map_err(|e| (ErrorCode::InvalidRequest, format!("cannot encode: {e}")))?;
    let envelope = pb::EnvelopeRequest {
        api_key: i32::from(ctx.api_key as i16),
        api_version: i32::from(ctx.api_version),
        request_data: body.to_vec(),
        principal: ctx.session.principal.to_string(),
        client_host: crate::security::host_address(ctx.peer.ip()),
    };
    let resp = broker
        .controller
        .call(Duration::from_secs(10), |mut c| {
            let r = envelope.clone();
            async move { c.envelope(r).await }
        })
        .await
        .map_err(|e| {
            (
                ErrorCode::RequestTimedOut,
                format!("controller: {}", e.message()),
            )
        })?;
    if resp.error_code != 0 {
        let code = i16::try_from(resp.error_code)
            .ok()
            .and_then(ErrorCode::from_code)
            .unwrap_or(ErrorCode::UnknownServerError);
        return Err((code, resp.error_message));
    }
    let mut data = Bytes::from(resp.response_data);
    let response = ResponseKind::decode(ctx.api_key, &mut data, ctx.api_version).map_err(|e| {
        (
            ErrorCode::UnknownServerError,
            format!("bad controller response: {e}"),
        )
    })?;
    // Answer once this broker sees the change (a describe right after must show it).
    if resp.committed_offset >= 0 {
        broker
            .wait_for_image(Duration::from_secs(2), |i| {
                i.offset >= resp.committed_offset
            })
            .await;
    }
    Ok(response)
}

fn message(m: &str) -> Option<StrBytes> {
    Some(StrBytes::from_string(m.to_string()))
}

/// CreateAcls, DeleteAcls, AlterUserScramCredentials, AlterClientQuotas: authorized here,
/// decided by the controller. `denied` is the response when the principal may not.
pub(crate) async fn forwarded(
    broker: &Broker,
    ctx: &RequestContext,
    op: AclOperation,
    request: RequestKind,
    refused: impl FnOnce(ErrorCode, &str) -> ResponseKind,
) -> ResponseKind {
    let acl_api = matches!(ctx.api_key, ApiKey::CreateAcls | ApiKey::DeleteAcls);
    if acl_api && !broker.authorizes() {
        return refused(
            ErrorCode::SecurityDisabled,
            "No Authorizer is configured (authorizer.class.name)",
        );
    }
    if !broker.authorized_cluster(ctx, &broker.image(), op) {
        return refused(
            ErrorCode::ClusterAuthorizationFailed,
            "Cluster authorization failed",
        );
    }
    match forward(broker, ctx, request).await {
        Ok(r) => r,
        Err((code, m)) => refused(code, &m),
    }
}

/// DescribeAcls: the ACLs of this broker's image that pass the filter, grouped by resource.
pub(crate) fn describe_acls(
    broker: &Broker,
    ctx: &RequestContext,
    r: DescribeAclsRequest,
) -> DescribeAclsResponse {
    let refuse = |code: ErrorCode, m: &str| {
        DescribeAclsResponse::default()
            .with_error_code(code.code())
            .with_error_message(message(m))
    };
    if !broker.authorizes() {
        return refuse(
            ErrorCode::SecurityDisabled,
            "No Authorizer is configured (authorizer.class.name)",
        );
    }
    let image = broker.image();
    if !broker.authorized_cluster(ctx, &image, AclOperation::Describe) {
        return refuse(
            ErrorCode::ClusterAuthorizationFailed,
            "Cluster authorization failed",
        );
    }
    let filter = match acl_filter(
        r.resource_type_filter,
        r.resource_name_filter.map(|s| s.to_string()),
        r.pattern_type_filter,
        r.principal_filter.map(|s| s.to_string()),
        r.host_filter.map(|s| s.to_string()),
        r.operation,
        r.permission_type,
    ) {
        Ok(f) => f,
        Err(e) => return refuse(ErrorCode::InvalidRequest, &e),
    };
    let mut resources: BTreeMap<(i8, String, i8), Vec<AclDescription>> = BTreeMap::new();
    for acl in image.acls.acls.values().filter(|a| filter.matches(a)) {
        resources
            .entry((
                acl.resource_type.code(),
                acl.resource_name.clone(),
                acl.pattern_type.code(),
            ))
            .or_default()
            .push(
                AclDescription::default()
                    .with_principal(StrBytes::from_string(acl.principal.clone()))
                    .with_host(StrBytes::from_string(acl.host.clone()))
                    .with_operation(acl.operation.code())
                    .with_permission_type(acl.permission.code()),
            );
    }
    DescribeAclsResponse::default().with_resources(
        resources
            .into_iter()
            .map(|((t, name, p), acls)| {
                DescribeAclsResource::default()
                    .with_resource_type(t)
                    .with_resource_name(StrBytes::from_string(name))
                    .with_pattern_type(p)
                    .with_acls(acls)
            })
            .collect(),
    )
}

/// DescribeUserScramCredentials: mechanisms and iterations (never keys) of the users asked
/// for, or of every user.
pub(crate) fn describe_user_scram_credentials(
    broker: &Broker,
    ctx: &RequestContext,
    r: DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse {
    let image = broker.image();
    if !broker.authorized_cluster(ctx, &image, AclOperation::Describe) {
        return DescribeUserScramCredentialsResponse::default()
            .with_error_code(ErrorCode::ClusterAuthorizationFailed.code())
            .with_error_message(message("Cluster authorization failed"));
    }
    let info = |user: &str| -> Vec<CredentialInfo> {
        image.scram.users.get(user).map_or_else(Vec::new, |m| {
            m.iter()
                .map(|(mech, c)| {
                    CredentialInfo::default()
                        .with_mechanism(mech.type_id())
                        .with_iterations(i32::try_from(c.iterations).unwrap_or(i32::MAX))
                })
                .collect()
        })
    };
    // Kafka: no list, or an empty one, describes every user.
    let users = r.users.filter(|u| !u.is_empty());
    let results = match users {
        None => image
            .scram
            .users
            .keys()
            .map(|u| {
                DescribeUserScramCredentialsResult::default()
                    .with_user(StrBytes::from_string(u.clone()))
                    .with_credential_infos(info(u))
            })
            .collect(),
        Some(users) => {
            let mut counts: BTreeMap<String, usize> = BTreeMap::new();
            for u in &users {
                *counts.entry(u.name.to_string()).or_default() += 1;
            }
            let mut seen = std::collections::BTreeSet::new();
            users
                .iter()
                .map(|u| u.name.to_string())
                .filter(|u| seen.insert(u.clone()))
                .map(|u| {
                    let result = DescribeUserScramCredentialsResult::default()
                        .with_user(StrBytes::from_string(u.clone()));
                    if counts[&u] > 1 {
                        result
                            .with_error_code(ErrorCode::DuplicateResource.code())
                            .with_error_message(message("Cannot describe SCRAM credentials for the same user twice in a single request"))
                    } else if !image.scram.users.contains_key(&u) {
                        result
                            .with_error_code(ErrorCode::ResourceNotFound.code())
                            .with_error_message(message("Attempt to describe a user credential that does not exist"))
                    } else {
                        result.with_credential_infos(info(&u))
                    }
                })
                .collect()
        }
    };
    DescribeUserScramCredentialsResponse::default().with_results(results)
}

macro_rules! unwrap_kind {
    ($response:expr, $kind:ident, $fallback:expr) => {
        match $response {
            ResponseKind::$kind(r) => r,
            _ => $fallback,
        }
    };
}

/// CreateAcls (ALTER on the cluster).
pub(crate) async fn create_acls(
    broker: &Broker,
    ctx: &RequestContext,
    r: kafka_protocol::messages::CreateAclsRequest,
) -> kafka_protocol::messages::CreateAclsResponse {
    use kafka_protocol::messages::create_acls_response::AclCreationResult;
    use kafka_protocol::messages::CreateAclsResponse;
    let n = r.creations.len();
    let refused = move |code: ErrorCode, m: &str| {
        ResponseKind::CreateAcls(
            CreateAclsResponse::default().with_results(
                (0..n)
                    .map(|_| {
                        AclCreationResult::default()
                            .with_error_code(code.code())
                            .with_error_message(message(m))
                    })
                    .collect(),
            ),
        )
    };
    let out = forwarded(
        broker,
        ctx,
        AclOperation::Alter,
        RequestKind::CreateAcls(r),
        refused,
    )
    .await;
    unwrap_kind!(out, CreateAcls, CreateAclsResponse::default())
}

/// DeleteAcls (ALTER on the cluster).
pub(crate) async fn delete_acls(
    broker: &Broker,
    ctx: &RequestContext,
    r: kafka_protocol::messages::DeleteAclsRequest,
) -> kafka_protocol::messages::DeleteAclsResponse {
    use kafka_protocol::messages::delete_acls_response::DeleteAclsFilterResult;
    use kafka_protocol::messages::DeleteAclsResponse;
    let n = r.filters.len();
    let refused = move |code: ErrorCode, m: &str| {
        ResponseKind::DeleteAcls(
            DeleteAclsResponse::default().with_filter_results(
                (0..n)
                    .map(|_| {
                        DeleteAclsFilterResult::default()
                            .with_error_code(code.code())
                            .with_error_message(message(m))
                    })
                    .collect(),
            ),
        )
    };
    let out = forwarded(
        broker,
        ctx,
        AclOperation::Alter,
        RequestKind::DeleteAcls(r),
        refused,
    )
    .await;
    unwrap_kind!(out, DeleteAcls, DeleteAclsResponse::default())
}

/// AlterUserScramCredentials (ALTER on the cluster).
pub(crate) async fn alter_user_scram_credentials(
    broker: &Broker,
    ctx: &RequestContext,
    r: kafka_protocol::messages::AlterUserScramCredentialsRequest,
) -> kafka_protocol::messages::AlterUserScramCredentialsResponse {
    use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
    use kafka_protocol::messages::AlterUserScramCredentialsResponse;
    let mut users: Vec<StrBytes> = Vec::new();
    for u in r
        .deletions
        .iter()
        .map(|d| &d.name)
        .chain(r.upsertions.iter().map(|u| &u.name))
    {
        if !users.contains(u) {
            users.push(u.clone());
        }
    }
    let refused = move |code: ErrorCode, m: &str| {
        ResponseKind::AlterUserScramCredentials(
            AlterUserScramCredentialsResponse::default().with_results(
                users
                    .iter()
                    .map(|u| {
                        AlterUserScramCredentialsResult::default()
                            .with_user(u.clone())
                            .with_error_code(code.code())
                            .with_error_message(message(m))
                    })
                    .collect(),
            ),
        )
    };
    let out = forwarded(
        broker,
        ctx,
        AclOperation::Alter,
        RequestKind::AlterUserScramCredentials(r),
        refused,
    )
    .await;
    unwrap_kind!(
        out,
        AlterUserScramCredentials,
        AlterUserScramCredentialsResponse::default()
    )
}
