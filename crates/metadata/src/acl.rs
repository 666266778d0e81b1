//! ACLs and Kafka's `StandardAuthorizer` semantics: literal, wildcard and prefixed resource
//! patterns, principals (`User:alice`, `User:*`), hosts (`*` or an address), allow and deny
//! with deny winning, the operations an ACL implies, super users, and
//! `allow.everyone.if.no.acl.found`.

use std::collections::BTreeSet;

use crate::security::AclsImage;

macro_rules! kafka_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $code:expr, $text:expr;)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $($(#[$vm])* $variant,)*
        }

        impl $name {
            /// Kafka's wire number.
            pub fn code(self) -> i8 {
                match self { $($name::$variant => $code,)* }
            }

            /// The value of a wire number.
            pub fn from_code(code: i8) -> Option<Self> {
                match code { $($code => Some($name::$variant),)* _ => None }
            }

            /// Kafka's name (as kafka-acls prints it).
            pub fn name(self) -> &'static str {
                match self { $($name::$variant => $text,)* }
            }

            /// The value of a name, in any case, with `-` or `_` between words.
            pub fn parse(s: &str) -> Option<Self> {
                let norm = s.trim().to_ascii_uppercase().replace('-', "_");
                match norm.as_str() { $($text => Some($name::$variant),)* _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

kafka_enum!(
    /// Kafka's `ResourceType`.
    ResourceType {
        /// UNKNOWN
        Unknown = 0, "UNKNOWN";
        /// ANY (filters only)
        Any = 1, "ANY";
        /// TOPIC
        Topic = 2, "TOPIC";
        /// GROUP
        Group = 3, "GROUP";
        /// CLUSTER (the one resource `kafka-cluster`)
        Cluster = 4, "CLUSTER";
        /// TRANSACTIONAL_ID
        TransactionalId = 5, "TRANSACTIONAL_ID";
        /// DELEGATION_TOKEN
        DelegationToken = 6, "DELEGATION_TOKEN";
        /// USER
        User = 7, "USER";
    }
);

kafka_enum!(
    /// Kafka's `PatternType`.
    PatternType {
        /// UNKNOWN
        Unknown = 0, "UNKNOWN";
        /// ANY (filters only)
        Any = 1, "ANY";
        /// MATCH (filters only: every pattern that matches the name)
        Match = 2, "MATCH";
        /// LITERAL (a name, or `*` for every name)
        Literal = 3, "LITERAL";
        /// PREFIXED
        Prefixed = 4, "PREFIXED";
    }
);

kafka_enum!(
    /// Kafka's `AclOperation`.
    AclOperation {
        /// UNKNOWN
        Unknown = 0, "UNKNOWN";
        /// ANY (filters only)
        Any = 1, "ANY";
        /// ALL
        All = 2, "ALL";
        /// READ
        Read = 3, "READ";
        /// WRITE
        Write = 4, "WRITE";
        /// CREATE
        Create = 5, "CREATE";
        /// DELETE
        Delete = 6, "DELETE";
        /// ALTER
        Alter = 7, "ALTER";
        /// DESCRIBE
        Describe = 8, "DESCRIBE";
        /// CLUSTER_ACTION
        ClusterAction = 9, "CLUSTER_ACTION";
        /// DESCRIBE_CONFIGS
        DescribeConfigs = 10, "DESCRIBE_CONFIGS";
        /// ALTER_CONFIGS
        AlterConfigs = 11, "ALTER_CONFIGS";
        /// IDEMPOTENT_WRITE
        IdempotentWrite = 12, "IDEMPOTENT_WRITE";
        /// CREATE_TOKENS
        CreateTokens = 13, "CREATE_TOKENS";
        /// DESCRIBE_TOKENS
        DescribeTokens = 14, "DESCRIBE_TOKENS";
        /// TWO_PHASE_COMMIT
        TwoPhaseCommit = 15, "TWO_PHASE_COMMIT";
    }
);

kafka_enum!(
    /// Kafka's `AclPermissionType`.
    AclPermission {
        /// UNKNOWN
        Unknown = 0, "UNKNOWN";
        /// ANY (filters only)
        Any = 1, "ANY";
        /// DENY
        Deny = 2, "DENY";
        /// ALLOW
        Allow = 3, "ALLOW";
    }
);

/// The literal resource name that matches every name.
pub const WILDCARD: &str = "*";
/// The principal that matches every user.
pub const WILDCARD_PRINCIPAL: &str = "User:*";
/// The name of the cluster resource.
pub const CLUSTER_NAME: &str = "kafka-cluster";

/// One ACL: who may (or may not) do what to which resources from where.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StandardAcl {
    /// The resource type.
    pub resource_type: ResourceType,
    /// The name, prefix or `*`.
    pub resource_name: String,
    /// LITERAL or PREFIXED.
    pub pattern_type: PatternType,
    /// `User:alice`, or `User:*`.
    pub principal: String,
    /// A host address, or `*`.
    pub host: String,
    /// The operation.
    pub operation: AclOperation,
    /// ALLOW or DENY.
    pub permission: AclPermission,
}

impl StandardAcl {
    /// Whether this ACL's pattern covers `name` of `resource_type`.
    pub fn covers(&self, resource_type: ResourceType, name: &str) -> bool {
        self.resource_type == resource_type
            && match self.pattern_type {
                PatternType::Literal => {
                    self.resource_name == name || self.resource_name == WILDCARD
                }
                PatternType::Prefixed => name.starts_with(&self.resource_name),
                _ => false,
            }
    }

    fn applies_to(&self, principal: &str, host: &str) -> bool {
        (self.principal == principal || self.principal == WILDCARD_PRINCIPAL)
            && (self.host == WILDCARD || self.host == host)
    }

    /// Whether an ALLOW of this ACL's operation grants `op` (ALL grants everything; READ,
    /// WRITE, DELETE and ALTER imply DESCRIBE; ALTER_CONFIGS implies DESCRIBE_CONFIGS).
    fn grants(&self, op: AclOperation) -> bool {
        self.operation == AclOperation::All
            || self.operation == op
            || (op == AclOperation::Describe
                && matches!(
                    self.operation,
                    AclOperation::Read
                        | AclOperation::Write
                        | AclOperation::Delete
                        | AclOperation::Alter
                ))
            || (op == AclOperation::DescribeConfigs && self.operation == AclOperation::AlterConfigs)
    }

    /// Whether a DENY of this ACL's operation refuses `op`.
    fn refuses(&self, op: AclOperation) -> bool {
        self.operation == AclOperation::All || self.operation == op
    }
}

/// A filter over ACLs (DescribeAcls, DeleteAcls): `ANY` and `None` match everything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclFilter {
    /// Resource type, or ANY.
    pub resource_type: ResourceType,
    /// Resource name, or any.
    pub resource_name: Option<String>,
    /// LITERAL, PREFIXED, ANY or MATCH.
    pub pattern_type: PatternType,
    /// Principal, or any.
    pub principal: Option<String>,
    /// Host, or any.
    pub host: Option<String>,
    /// Operation, or ANY.
    pub operation: AclOperation,
    /// Permission, or ANY.
    pub permission: AclPermission,
}

impl AclFilter {
    /// Whether `acl` passes the filter (Kafka's `AclBindingFilter.matches`).
    pub fn matches(&self, acl: &StandardAcl) -> bool {
        let type_ok =
            self.resource_type == ResourceType::Any || self.resource_type == acl.resource_type;
        let pattern_ok = match (self.pattern_type, &self.resource_name) {
            (PatternType::Any, None) => true,
            (PatternType::Any, Some(n)) => &acl.resource_name == n,
            (PatternType::Match, None) => true,
            (PatternType::Match, Some(n)) => match acl.pattern_type {
                PatternType::Literal => &acl.resource_name == n || acl.resource_name == WILDCARD,
                PatternType::Prefixed => n.starts_with(&acl.resource_name),
                _ => false,
            },
            (p, name) => {
                p == acl.pattern_type && name.as_ref().is_none_or(|n| &acl.resource_name == n)
            }
        };
        type_ok
            && pattern_ok
            && self.principal.as_ref().is_none_or(|p| &acl.principal == p)
            && self.host.as_ref().is_none_or(|h| &acl.host == h)
            && (self.operation == AclOperation::Any || self.operation == acl.operation)
            && (self.permission == AclPermission::Any || self.permission == acl.permission)
    }
}

/// The authorizer's settings: `super.users` and `allow.everyone.if.no.acl.found`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthorizerConfig {
    /// `super.users` (`User:admin;User:ops`): allowed everything.
    pub super_users: BTreeSet<String>,
    /// `allow.everyone.if.no.acl.found` (false).
    pub allow_everyone_if_no_acl_found: bool,
}

impl AuthorizerConfig {
    /// Parses `super.users`: principals separated by `;`.
    pub fn parse_super_users(value: &str) -> BTreeSet<String> {
        value
            .split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }
}

impl AclsImage {
    /// Whether `principal` (as `User:name`) from `host` may do `op` on `name` of
    /// `resource_type`: super users may; a matching DENY refuses; a matching ALLOW grants;
    /// with no ACL on the resource at all, `allow.everyone.if.no.acl.found` decides.
    pub fn authorize(
        &self,
        config: &AuthorizerConfig,
        principal: &str,
        host: &str,
        op: AclOperation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        if config.super_users.contains(principal) {
            return true;
        }
        let mut any_on_resource = false;
        let mut allowed = false;
        for acl in self.acls.values().filter(|a| a.covers(resource_type, name)) {
            any_on_resource = true;
            if !acl.applies_to(principal, host) {
                continue;
            }
            match acl.permission {
                AclPermission::Deny if acl.refuses(op) => return false,
                AclPermission::Allow if acl.grants(op) => allowed = true,
                _ => {}
            }
        }
        allowed || (!any_on_resource && config.allow_everyone_if_no_acl_found)
    }

    /// Whether `principal` may do `op` on some resource of `resource_type` (Kafka's
    /// `Authorizer.authorizeByResourceType`, used for idempotent writes): allowed on the
    /// placeholder resource `hardcode` (super users, `allow.everyone.if.no.acl.found`), or an
    /// ALLOW of exactly `op` (or ALL) that no DENY dominates: DENY `*` refuses all, a literal
    /// DENY cancels the same literal ALLOW, a prefixed DENY any ALLOW it is a prefix of.
    pub fn authorize_any(
        &self,
        config: &AuthorizerConfig,
        principal: &str,
        host: &str,
        op: AclOperation,
        resource_type: ResourceType,
    ) -> bool {
        if self.authorize(config, principal, host, op, resource_type, "hardcode") {
            return true;
        }
        let mut deny_literal = BTreeSet::new();
        let mut deny_prefixed = BTreeSet::new();
        let mut allow = Vec::new();
        let mut wildcard_allow = false;
        for a in self
            .acls
            .values()
            .filter(|a| a.resource_type == resource_type)
        {
            if !a.applies_to(principal, host)
                || (a.operation != op && a.operation != AclOperation::All)
            {
                continue;
            }
            match (a.permission, a.pattern_type) {
                (AclPermission::Deny, PatternType::Literal) if a.resource_name == WILDCARD => {
                    return false
                }
                (AclPermission::Deny, PatternType::Literal) => {
                    deny_literal.insert(a.resource_name.as_str());
                }
                (AclPermission::Deny, PatternType::Prefixed) => {
                    deny_prefixed.insert(a.resource_name.as_str());
                }
                (AclPermission::Allow, PatternType::Literal) if a.resource_name == WILDCARD => {
                    wildcard_allow = true;
                }
                (AclPermission::Allow, p @ (PatternType::Literal | PatternType::Prefixed)) => {
                    allow.push((p, a.resource_name.as_str()));
                }
                _ => {}
            }
        }
        if wildcard_allow {
            return true;
        }
        allow.into_iter().any(|(p, name)| {
            if p == PatternType::Literal && deny_literal.contains(name) {
                return false;
            }
            !name
                .char_indices()
                .map(|(i, c)| &name[..i + c.len_utf8()])
                .any(|prefix| deny_prefixed.contains(prefix))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use odradek_common::Uuid;

    fn acl(
        rt: ResourceType,
        name: &str,
        pt: PatternType,
        principal: &str,
        op: AclOperation,
        perm: AclPermission,
    ) -> StandardAcl {
        StandardAcl {
            resource_type: rt,
            resource_name: name.into(),
            pattern_type: pt,
            principal: principal.into(),
            host: "*".into(),
            operation: op,
            permission: perm,
        }
    }

    fn image(acls: Vec<StandardAcl>) -> AclsImage {
        AclsImage {
            acls: acls
                .into_iter()
                .enumerate()
                .map(|(i, a)| {
                    (
                        Uuid::from_slice(&(i as u128 + 1).to_be_bytes()).expect("must work"),
                        a,
                    )
                })
                .collect(),
        }
    }

    #[test]
    fn deny_wins_prefixes_match_and_ops_imply_describe() {
        use AclOperation::*;
        use AclPermission::*;
        use PatternType::*;
        use ResourceType::Topic;
        let img = image(vec![
            acl(Topic, "orders", Literal, "User:alice", Write, Allow),
            acl(Topic, "pay", Prefixed, "User:alice", Read, Allow),
            acl(Topic, "pay-secret", Literal, "User:alice", Read, Deny),
            acl(Topic, "*", Literal, "User:bob", All, Allow),
            acl(Topic, "orders", Literal, "User:*", Describe, Deny),
        ]);
        let c = AuthorizerConfig::default();
        let ok = |p: &str, op, n: &str| img.authorize(&c, p, "10.0.0.1", op, Topic, n);
        assert!(ok("User:alice", Write, "orders"));
        assert!(!ok("User:alice", Read, "orders"));
        assert!(
            !ok("User:alice", Describe, "orders"),
            "the wildcard-principal DENY wins"
        );
        assert!(ok("User:alice", Read, "payments"));
        assert!(
            ok("User:alice", Describe, "payments"),
            "READ implies DESCRIBE"
        );
        assert!(!ok("User:alice", Read, "pay-secret"));
        assert!(!ok("User:alice", Read, "other"));
        assert!(ok("User:bob", Delete, "anything"));
        assert!(
            !ok("User:carol", Read, "unlisted"),
            "no ACL and allow.everyone false"
        );
        let open = AuthorizerConfig {
            allow_everyone_if_no_acl_found: true,
            ..AuthorizerConfig::default()
        };
        let img2 = image(vec![acl(Topic, "a", Literal, "User:x", Read, Allow)]);
        assert!(img2.authorize(&open, "User:y", "h", Read, Topic, "b"));
        assert!(!img2.authorize(&open, "User:y", "h", Read, Topic, "a"));
        let sup = AuthorizerConfig {
            super_users: AuthorizerConfig::parse_super_users("User:admin; User:ops"),
            ..AuthorizerConfig::default()
        };
        assert!(img.authorize(&sup, "User:ops", "h", Alter, Topic, "orders"));
    }

    #[test]
    fn authorize_any_follows_authorize_by_resource_type() {
        use AclOperation::*;
        use AclPermission::*;
        use PatternType::*;
        use ResourceType::Topic;
        let c = AuthorizerConfig::default();
        let any =
            |acls: Vec<StandardAcl>| image(acls).authorize_any(&c, "User:a", "h", Write, Topic);
        assert!(!any(vec![]));
        assert!(any(vec![acl(Topic, "t", Literal, "User:a", Write, Allow)]));
        assert!(
            !any(vec![acl(Topic, "t", Literal, "User:a", Read, Allow)]),
            "exact op only"
        );
        assert!(!any(vec![
            acl(Topic, "t", Literal, "User:a", Write, Allow),
            acl(Topic, "t", Literal, "User:a", Write, Deny),
        ]));
        assert!(
            !any(vec![
                acl(Topic, "pay-x", Prefixed, "User:a", Write, Allow),
                acl(Topic, "pay", Prefixed, "User:a", Write, Deny),
            ]),
            "a prefixed deny dominates"
        );
        assert!(any(vec![
            acl(Topic, "pay", Prefixed, "User:a", Write, Allow),
            acl(Topic, "pay-x", Prefixed, "User:a", Write, Deny),
        ]));
        assert!(!any(vec![
            acl(Topic, "*", Literal, "User:a", All, Allow),
            acl(Topic, "*", Literal, "User:*", Write, Deny),
        ]));
        let open = AuthorizerConfig {
            allow_everyone_if_no_acl_found: true,
            ..AuthorizerConfig::default()
        };
        let img = image(vec![acl(Topic, "other", Literal, "User:b", Read, Allow)]);
        assert!(
            img.authorize_any(&open, "User:a", "h", Write, Topic),
            "no ACL on the placeholder"
        );
    }

    #[test]
    fn hosts_restrict_and_filters_match_as_kafka() {
        let mut a = acl(
            ResourceType::Group,
            "g",
            PatternType::Literal,
            "User:u",
            AclOperation::Read,
            AclPermission::Allow,
        );
        a.host = "10.0.0.1".into();
        let img = image(vec![a.clone()]);
        let c = AuthorizerConfig::default();
        assert!(img.authorize(
            &c,
            "User:u",
            "10.0.0.1",
            AclOperation::Read,
            ResourceType::Group,
            "g"
        ));
        assert!(!img.authorize(
            &c,
            "User:u",
            "10.0.0.2",
            AclOperation::Read,
            ResourceType::Group,
            "g"
        ));
        let mut f = AclFilter {
            resource_type: ResourceType::Any,
            resource_name: None,
            pattern_type: PatternType::Any,
            principal: None,
            host: None,
            operation: AclOperation::Any,
            permission: AclPermission::Any,
        };
        assert!(f.matches(&a));
        f.pattern_type = PatternType::Prefixed;
        assert!(!f.matches(&a));
        f.pattern_type = PatternType::Match;
        f.resource_name = Some("g".into());
        assert!(f.matches(&a));
        f.principal = Some("User:v".into());
        assert!(!f.matches(&a));
        assert_eq!(
            AclOperation::parse("describe-configs"),
            Some(AclOperation::DescribeConfigs)
        );
        assert_eq!(
            ResourceType::from_code(5),
            Some(ResourceType::TransactionalId)
        );
    }
}
