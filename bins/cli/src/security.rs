//! `odradek acls add|list|remove` (kafka-acls' flags and output), `odradek users scram
//! set|describe|delete`, `odradek quotas alter|describe` (kafka-configs' entities).

use clap::{Args, Subcommand};
use odradek_client::{AclEntry, Client, ClientError, QuotaEntityParts, ScramMechanism};

const TOPIC: i8 = 2;
const GROUP: i8 = 3;
const CLUSTER: i8 = 4;
const TXN_ID: i8 = 5;
const ANY: i8 = 1;
const DENY: i8 = 2;
const ALLOW: i8 = 3;

const OPERATIONS: [(&str, i8); 14] = [
    ("All", 2),
    ("Read", 3),
    ("Write", 4),
    ("Create", 5),
    ("Delete", 6),
    ("Alter", 7),
    ("Describe", 8),
    ("ClusterAction", 9),
    ("DescribeConfigs", 10),
    ("AlterConfigs", 11),
    ("IdempotentWrite", 12),
    ("CreateTokens", 13),
    ("DescribeTokens", 14),
    ("TwoPhaseCommit", 15),
];

fn usage(m: impl Into<String>) -> ClientError {
    ClientError::Config(m.into())
}

fn operation(name: &str) -> Result<i8, ClientError> {
    let norm = name.replace(['-', '_'], "").to_ascii_lowercase();
    OPERATIONS
        .iter()
        .find(|(n, _)| n.to_ascii_lowercase() == norm)
        .map(|(_, c)| *c)
        .ok_or_else(|| {
            usage(format!(
                "--operation {name}: not one of {:?}",
                OPERATIONS.map(|o| o.0)
            ))
        })
}

fn operation_name(code: i8) -> String {
    OPERATIONS
        .iter()
        .find(|(_, c)| *c == code)
        .map_or_else(|| code.to_string(), |(n, _)| n.to_ascii_uppercase())
}

fn resource_type_name(code: i8) -> &'static str {
    match code {
        TOPIC => "TOPIC",
        GROUP => "GROUP",
        CLUSTER => "CLUSTER",
        TXN_ID => "TRANSACTIONAL_ID",
        _ => "UNKNOWN",
    }
}

fn pattern_name(code: i8) -> &'static str {
    match code {
        3 => "LITERAL",
        4 => "PREFIXED",
        _ => "UNKNOWN",
    }
}

/// The resources an ACL command names.
#[derive(Args, Clone)]
pub struct Resources {
    /// Topic (repeatable; `*` for all).
    #[arg(long)]
    topic: Vec<String>,
    /// Consumer group (repeatable; `*` for all).
    #[arg(long)]
    group: Vec<String>,
    /// The cluster.
    #[arg(long)]
    cluster: bool,
    /// Transactional id (repeatable; `*` for all).
    #[arg(long = "transactional-id")]
    transactional_id: Vec<String>,
    /// literal (default for add), prefixed; for list and remove also match and any.
    #[arg(long = "resource-pattern-type")]
    resource_pattern_type: Option<String>,
}

impl Resources {
    fn list(&self) -> Vec<(i8, String)> {
        let mut out: Vec<(i8, String)> = Vec::new();
        out.extend(self.topic.iter().map(|t| (TOPIC, t.clone())));
        out.extend(self.group.iter().map(|g| (GROUP, g.clone())));
        out.extend(self.transactional_id.iter().map(|t| (TXN_ID, t.clone())));
        if self.cluster {
            out.push((CLUSTER, "kafka-cluster".into()));
        }
        out
    }

    fn pattern(&self, default: i8) -> Result<i8, ClientError> {
        match self
            .resource_pattern_type
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None => Ok(default),
            Some("any") => Ok(1),
            Some("match") => Ok(2),
            Some("literal") => Ok(3),
            Some("prefixed") => Ok(4),
            Some(o) => Err(usage(format!(
                "--resource-pattern-type {o}: literal, prefixed, match or any"
            ))),
        }
    }
}

#[derive(Args)]
pub struct AclArgs {
    #[command(flatten)]
    resources: Resources,
    /// Principal to allow, e.g. User:alice (repeatable).
    #[arg(long = "allow-principal")]
    allow_principal: Vec<String>,
    /// Principal to deny (repeatable).
    #[arg(long = "deny-principal")]
    deny_principal: Vec<String>,
    /// Host the allow applies to (default *).
    #[arg(long = "allow-host")]
    allow_host: Vec<String>,
    /// Host the deny applies to (default *).
    #[arg(long = "deny-host")]
    deny_host: Vec<String>,
    /// Operation: Read, Write, Create, Delete, Alter, Describe, ClusterAction,
    /// DescribeConfigs, AlterConfigs, IdempotentWrite, All (repeatable).
    #[arg(long)]
    operation: Vec<String>,
    /// The producer's ACLs: WRITE, DESCRIBE and CREATE on the topics (and WRITE, DESCRIBE on
    /// the transactional ids).
    #[arg(long)]
    producer: bool,
    /// The consumer's ACLs: READ and DESCRIBE on the topics, READ on the groups.
    #[arg(long)]
    consumer: bool,
}

impl AclArgs {
    fn entries(&self) -> Result<Vec<AclEntry>, ClientError> {
        let pattern = self.resources.pattern(3)?;
        if pattern != 3 && pattern != 4 {
            return Err(usage(
                "adding ACLs needs --resource-pattern-type literal or prefixed",
            ));
        }
        let mut ops_for: Vec<(i8, String, Vec<i8>)> = Vec::new();
        let explicit = self
            .operation
            .iter()
            .map(|o| operation(o))
            .collect::<Result<Vec<_>, _>>()?;
        for (rt, name) in self.resources.list() {
            let mut ops = explicit.clone();
            if self.producer && rt == TOPIC {
                ops.extend([4, 8, 5]);
            }
            if self.producer && rt == TXN_ID {
                ops.extend([4, 8]);
            }
            if self.consumer && rt == TOPIC {
                ops.extend([3, 8]);
            }
            if self.consumer && rt == GROUP {
                ops.push(3);
            }
            ops.sort_unstable();
            ops.dedup();
            ops_for.push((rt, name, ops));
        }
        if ops_for.is_empty() {
            return Err(usage(
                "name a resource: --topic, --group, --cluster or --transactional-id",
            ));
        }
        let hosts = |h: &Vec<String>| {
            if h.is_empty() {
                vec!["*".to_string()]
            } else {
                h.clone()
            }
        };
        let mut out = Vec::new();
        for (principals, hosts, permission) in [
            (&self.allow_principal, hosts(&self.allow_host), ALLOW),
            (&self.deny_principal, hosts(&self.deny_host), DENY),
        ] {
            for p in principals {
                for h in &hosts {
                    for (rt, name, ops) in &ops_for {
                        for op in ops {
                            out.push(AclEntry {
                                resource_type: *rt,
                                resource_name: Some(name.clone()),
                                pattern_type: pattern,
                                principal: Some(p.clone()),
                                host: Some(h.clone()),
                                operation: *op,
                                permission,
                            });
                        }
                    }
                }
            }
        }
        if out.is_empty() {
            return Err(usage("give --allow-principal or --deny-principal, and --operation (or --producer / --consumer)"));
        }
        Ok(out)
    }
}

#[derive(Subcommand)]
pub enum AclsCommand {
    /// Add ACLs (kafka-acls --add).
    Add(AclArgs),
    /// List ACLs (kafka-acls --list), optionally of resources and a principal.
    List {
        #[command(flatten)]
        resources: Resources,
        #[arg(long)]
        principal: Option<String>,
    },
    /// Remove the ACLs given (kafka-acls --remove).
    Remove(AclArgs),
}

fn print_acls(acls: &[AclEntry]) {
    let mut by_resource: std::collections::BTreeMap<(i8, String, i8), Vec<&AclEntry>> =
        std::collections::BTreeMap::new();
    for a in acls {
        by_resource
            .entry((
                a.resource_type,
                a.resource_name.clone().unwrap_or_default(),
                a.pattern_type,
            ))
            .or_default()
            .push(a);
    }
    for ((rt, name, pt), list) in by_resource {
        println!(
            "Current ACLs for resource `ResourcePattern(resourceType={}, name={name}, patternType={})`: ",
            resource_type_name(rt),
            pattern_name(pt)
        );
        for a in list {
            println!(
                " \t(principal={}, host={}, operation={}, permissionType={})",
                a.principal.as_deref().unwrap_or(""),
                a.host.as_deref().unwrap_or(""),
                operation_name(a.operation),
                if a.permission == DENY {
                    "DENY"
                } else {
                    "ALLOW"
                }
            );
        }
        println!();
    }
}

pub async fn acls(client: &mut Client, cmd: AclsCommand) -> Result<(), ClientError> {
    match cmd {
        AclsCommand::Add(a) => {
            let entries = a.entries()?;
            client.create_acls(&entries).await?;
            println!("Adding ACLs:");
            print_acls(&entries);
        }
        AclsCommand::Remove(a) => {
            let entries = a.entries()?;
            let removed = client.delete_acls(&entries).await?;
            println!("Removed {} ACLs:", removed.len());
            print_acls(&removed);
        }
        AclsCommand::List {
            resources,
            principal,
        } => {
            let pattern = resources.pattern(ANY)?;
            let list = resources.list();
            let filters: Vec<(i8, Option<String>)> = if list.is_empty() {
                vec![(ANY, None)]
            } else {
                list.into_iter().map(|(t, n)| (t, Some(n))).collect()
            };
            let mut all = Vec::new();
            for (rt, name) in filters {
                all.extend(
                    client
                        .describe_acls(&AclEntry {
                            resource_type: rt,
                            resource_name: name,
                            pattern_type: pattern,
                            principal: principal.clone(),
                            host: None,
                            operation: ANY,
                            permission: ANY,
                        })
                        .await?,
                );
            }
            print_acls(&all);
        }
    }
    Ok(())
}

#[derive(Subcommand)]
pub enum UsersCommand {
    /// SCRAM credentials.
    #[command(subcommand)]
    Scram(ScramCommand),
}

#[derive(Subcommand)]
pub enum ScramCommand {
    /// Set a user's credential for a mechanism (salted here; the password is not sent).
    Set {
        #[arg(long)]
        user: String,
        /// SCRAM-SHA-256 or SCRAM-SHA-512.
        #[arg(long, default_value = "SCRAM-SHA-512")]
        mechanism: String,
        #[arg(long)]
        password: String,
        #[arg(long, default_value_t = 4096)]
        iterations: u32,
    },
    /// Show users' mechanisms and iterations (all users without --user).
    Describe {
        #[arg(long)]
        user: Vec<String>,
    },
    /// Delete a user's credential for a mechanism.
    Delete {
        #[arg(long)]
        user: String,
        #[arg(long, default_value = "SCRAM-SHA-512")]
        mechanism: String,
    },
}

pub async fn users(client: &mut Client, cmd: UsersCommand) -> Result<(), ClientError> {
    let UsersCommand::Scram(cmd) = cmd;
    let mech = |m: &str| m.parse::<ScramMechanism>().map_err(usage);
    match cmd {
        ScramCommand::Set {
            user,
            mechanism,
            password,
            iterations,
        } => {
            client
                .set_scram_credential(&user, mech(&mechanism)?, &password, iterations)
                .await?;
            println!("Set {mechanism} credential of user {user}");
        }
        ScramCommand::Delete { user, mechanism } => {
            client
                .delete_scram_credential(&user, mech(&mechanism)?)
                .await?;
            println!("Deleted {mechanism} credential of user {user}");
        }
        ScramCommand::Describe { user } => {
            let users = (!user.is_empty()).then_some(user.as_slice());
            for (name, infos) in client.describe_scram_credentials(users).await? {
                let list: Vec<String> = infos
                    .iter()
                    .map(|(m, i)| {
                        let m = ScramMechanism::from_type_id(*m).map_or("UNKNOWN", |m| m.name());
                        format!("{m}=iterations={i}")
                    })
                    .collect();
                println!(
                    "SCRAM credential configs for user-principal '{name}' are {}",
                    list.join(", ")
                );
            }
        }
    }
    Ok(())
}

/// The entity a quota command names.
#[derive(Args)]
pub struct QuotaEntity {
    /// A user (principal name).
    #[arg(long)]
    user: Option<String>,
    /// The default user.
    #[arg(long = "user-default")]
    user_default: bool,
    /// A client id.
    #[arg(long = "client-id")]
    client_id: Option<String>,
    /// The default client id.
    #[arg(long = "client-default")]
    client_default: bool,
    /// An IP address (connection_creation_rate).
    #[arg(long)]
    ip: Option<String>,
}

impl QuotaEntity {
    fn parts(&self) -> QuotaEntityParts {
        let mut parts = Vec::new();
        if self.user.is_some() || self.user_default {
            parts.push(("user".to_string(), self.user.clone()));
        }
        if self.client_id.is_some() || self.client_default {
            parts.push(("client-id".to_string(), self.client_id.clone()));
        }
        if let Some(ip) = &self.ip {
            parts.push(("ip".to_string(), Some(ip.clone())));
        }
        parts
    }
}

#[derive(Subcommand)]
pub enum QuotasCommand {
    /// Set or remove quotas of an entity (kafka-configs --alter --entity-type users|clients).
    Alter {
        #[command(flatten)]
        entity: QuotaEntity,
        /// key=value,... with keys producer_byte_rate, consumer_byte_rate,
        /// request_percentage, controller_mutation_rate, connection_creation_rate.
        #[arg(long = "add-config")]
        add_config: Option<String>,
        /// key,... to remove.
        #[arg(long = "delete-config")]
        delete_config: Option<String>,
    },
    /// Show quotas (all entities without a filter).
    Describe {
        #[command(flatten)]
        entity: QuotaEntity,
    },
}

fn entity_text(parts: &QuotaEntityParts) -> String {
    parts
        .iter()
        .map(|(t, n)| format!("{t}={}", n.as_deref().unwrap_or("<default>")))
        .collect::<Vec<_>>()
        .join(", ")
}

pub async fn quotas(client: &mut Client, cmd: QuotasCommand) -> Result<(), ClientError> {
    match cmd {
        QuotasCommand::Alter {
            entity,
            add_config,
            delete_config,
        } => {
            let parts = entity.parts();
            if parts.is_empty() {
                return Err(usage(
                    "name an entity: --user/--user-default, --client-id/--client-default or --ip",
                ));
            }
            let mut set = Vec::new();
            for kv in add_config
                .iter()
                .flat_map(|c| c.split(','))
                .filter(|s| !s.is_empty())
            {
                let (k, v) = kv
                    .split_once('=')
                    .ok_or_else(|| usage(format!("--add-config {kv}: expected key=value")))?;
                let v: f64 = v
                    .trim()
                    .parse()
                    .map_err(|_| usage(format!("--add-config {kv}: {v} is not a number")))?;
                set.push((k.trim().to_string(), v));
            }
            let remove: Vec<String> = delete_config
                .iter()
                .flat_map(|c| c.split(','))
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
            if set.is_empty() && remove.is_empty() {
                return Err(usage("give --add-config or --delete-config"));
            }
            client.alter_client_quotas(&parts, &set, &remove).await?;
            println!("Completed updating config for {}.", entity_text(&parts));
        }
        QuotasCommand::Describe { entity } => {
            for (parts, values) in client.describe_client_quotas(&entity.parts()).await? {
                let values: Vec<String> = values.iter().map(|(k, v)| format!("{k}={v}")).collect();
                println!(
                    "Quota configs for {} are {}",
                    entity_text(&parts),
                    values.join(", ")
                );
            }
        }
    }
    Ok(())
}
