//! Authorization of requests: the session's principal and host against the ACLs of the
//! current image, with the configured `super.users` and `allow.everyone.if.no.acl.found`.
//! Without `authorizer.class.name` every request is allowed, as in Kafka.

use odradek_frontend::RequestContext;
use odradek_metadata::acl::{AclOperation, ResourceType, CLUSTER_NAME};
use odradek_metadata::MetadataImage;

use crate::handlers::Broker;

impl Broker {
    /// Whether an authorizer is configured.
    pub(crate) fn authorizes(&self) -> bool {
        self.config.authorizer.is_some()
    }

    /// Whether the request's principal may do `op` on `name` of `resource_type`.
    pub(crate) fn authorized(
        &self,
        ctx: &RequestContext,
        image: &MetadataImage,
        op: AclOperation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        let Some(config) = &self.config.authorizer else {
            return true;
        };
        let principal = ctx.session.principal.to_string();
        let host = ctx.peer.ip().to_string();
        let ok = image
            .acls
            .authorize(config, &principal, &host, op, resource_type, name);
        if !ok {
            tracing::debug!(%principal, %host, %op, %resource_type, resource = name, api = ?ctx.api_key, "denied");
        }
        ok
    }

    /// Whether the request's principal may do `op` on the cluster.
    pub(crate) fn authorized_cluster(
        &self,
        ctx: &RequestContext,
        image: &MetadataImage,
        op: AclOperation,
    ) -> bool {
        self.authorized(ctx, image, op, ResourceType::Cluster, CLUSTER_NAME)
    }

    /// Whether the request's principal may do `op` on some resource of `resource_type`.
    pub(crate) fn authorized_any(
        &self,
        ctx: &RequestContext,
        image: &MetadataImage,
        op: AclOperation,
        resource_type: ResourceType,
    ) -> bool {
        let Some(config) = &self.config.authorizer else {
            return true;
        };
        image.acls.authorize_any(
            config,
            &ctx.session.principal.to_string(),
            &ctx.peer.ip().to_string(),
            op,
            resource_type,
        )
    }
}
