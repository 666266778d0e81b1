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
        let host = host_address(ctx.peer.ip());
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
            &host_address(ctx.peer.ip()),
            op,
            resource_type,
        )
    }
}

/// A peer's address as Java's `InetAddress.getHostAddress()` writes it, which is what Kafka
/// compares ACL hosts with: IPv4-mapped IPv6 as plain IPv4, IPv6 as eight uncompressed groups.
pub(crate) fn host_address(ip: std::net::IpAddr) -> String {
    match ip.to_canonical() {
        std::net::IpAddr::V4(v4) => v4.to_string(),
        std::net::IpAddr::V6(v6) => v6
            .segments()
            .iter()
            .map(|s| format!("{s:x}"))
            .collect::<Vec<_>>()
            .join(":"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn hosts_are_written_as_java_does() {
        let h = |s: &str| super::host_address(s.parse().expect("an address"));
        assert_eq!(h("10.0.0.1"), "10.0.0.1");
        assert_eq!(h("::ffff:10.0.0.1"), "10.0.0.1");
        assert_eq!(h("::1"), "0:0:0:0:0:0:0:1");
        assert_eq!(h("fe80::1:2"), "fe80:0:0:0:0:0:1:2");
    }
}
