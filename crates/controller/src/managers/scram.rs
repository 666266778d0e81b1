//! SCRAM credentials (Kafka's `ScramControlManager`): AlterUserScramCredentials upserts and
//! deletes per (user, mechanism); the credential records are what brokers authenticate with.

use std::collections::{BTreeMap, BTreeSet};

use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
};
use kafka_protocol::protocol::StrBytes;
use odradek_common::scram::{ScramCredential, ScramMechanism, MAX_ITERATIONS, MIN_ITERATIONS};
use odradek_common::ErrorCode;
use odradek_metadata::proto::{self, metadata_record::Record};
use odradek_metadata::MetadataImage;

use super::{rec, ControllerResult};

/// The record that stores `credential` for `user`.
pub fn credential_record(
    user: &str,
    mechanism: ScramMechanism,
    credential: &ScramCredential,
) -> proto::MetadataRecord {
    rec(Record::UserScramCredential(
        proto::UserScramCredentialRecord {
            name: user.to_string(),
            mechanism: mechanism.type_id() as u32,
            salt: credential.salt.clone(),
            stored_key: credential.stored_key.clone(),
            server_key: credential.server_key.clone(),
            iterations: credential.iterations,
        },
    ))
}

/// The credential record of one `--add-scram` argument of `odradek-storage format`, in
/// kafka-storage's form: `SCRAM-SHA-256=[name=alice,password=alice-secret]`, with optional
/// `iterations=N` (4096) and `salt=<base64>` (random).
pub fn bootstrap_credential(spec: &str) -> Result<proto::MetadataRecord, String> {
    let (mechanism, rest) = spec.split_once('=').ok_or_else(|| {
        format!("--add-scram {spec:?}: expected MECHANISM=[name=...,password=...]")
    })?;
    let mechanism: ScramMechanism = mechanism.parse()?;
    let inner = rest
        .trim()
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .ok_or_else(|| format!("--add-scram {spec:?}: the attributes go in [...]"))?;
    let mut name = None;
    let mut password = None;
    let mut iterations = MIN_ITERATIONS;
    let mut salt = None;
    for part in inner.split(',') {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("--add-scram: {part:?} is not key=value"))?;
        let v = v.trim().trim_matches('"').to_string();
        match k.trim() {
            "name" => name = Some(v),
            "password" => password = Some(v),
            "iterations" => {
                iterations = v
                    .parse()
                    .ok()
                    .filter(|i| (MIN_ITERATIONS..=MAX_ITERATIONS).contains(i))
                    .ok_or_else(|| {
                        format!(
                            "--add-scram: iterations must be {MIN_ITERATIONS}..={MAX_ITERATIONS}"
                        )
                    })?
            }
            "salt" => {
                salt = Some(
                    odradek_common::scram::unb64(&v)
                        .map_err(|e| format!("--add-scram salt: {e}"))?,
                )
            }
            other => {
                return Err(format!(
                    "--add-scram: unknown attribute {other:?} (name, password, iterations, salt)"
                ))
            }
        }
    }
    let name = name
        .filter(|n| !n.is_empty())
        .ok_or("--add-scram: name is required")?;
    let password = password.ok_or("--add-scram: password is required")?;
    let salt = match salt {
        Some(s) => s,
        None => {
            let mut s = vec![0u8; 32];
            getrandom::getrandom(&mut s).map_err(|e| format!("no random salt: {e}"))?;
            s
        }
    };
    let credential = ScramCredential::from_password(mechanism, &password, salt, iterations);
    Ok(credential_record(&name, mechanism, &credential))
}

/// AlterUserScramCredentials: one result per user; a user's alterations all apply or none do.
pub fn alter_user_scram_credentials(
    image: &MetadataImage,
    req: &AlterUserScramCredentialsRequest,
) -> ControllerResult<AlterUserScramCredentialsResponse> {
    // KRaft Kafka: a user altered more than once in one request (whatever the mechanisms)
    // fails.
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for name in req
        .deletions
        .iter()
        .map(|d| d.name.to_string())
        .chain(req.upsertions.iter().map(|u| u.name.to_string()))
    {
        *seen.entry(name).or_default() += 1;
    }
    let duplicated: BTreeSet<String> = seen
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(name, _)| name)
        .collect();
    let mut failed: BTreeMap<String, (ErrorCode, String)> = BTreeMap::new();
    let mut records: BTreeMap<String, Vec<proto::MetadataRecord>> = BTreeMap::new();
    let mut users: Vec<String> = Vec::new();
    let fail = |user: &str, code, message: String, failed: &mut BTreeMap<_, _>| {
        failed.entry(user.to_string()).or_insert((code, message));
    };
    for user in &duplicated {
        fail(
            user,
            ErrorCode::DuplicateResource,
            "A user credential cannot be altered twice in the same request".into(),
            &mut failed,
        );
    }
    for d in &req.deletions {
        let user = d.name.to_string();
        if !users.contains(&user) {
            users.push(user.clone());
        }
        if user.is_empty() {
            fail(
                &user,
                ErrorCode::UnacceptableCredential,
                "Username must not be empty".into(),
                &mut failed,
            );
            continue;
        }
        let Some(mechanism) = ScramMechanism::from_type_id(d.mechanism) else {
            fail(
                &user,
                ErrorCode::UnsupportedSaslMechanism,
                "Unknown SCRAM mechanism".into(),
                &mut failed,
            );
            continue;
        };
        if image.scram_credential(mechanism, &user).is_none() {
            fail(
                &user,
                ErrorCode::ResourceNotFound,
                "Attempt to delete a user credential that does not exist".into(),
                &mut failed,
            );
            continue;
        }
        records
            .entry(user.clone())
            .or_default()
            .push(rec(Record::RemoveUserScramCredential(
                proto::RemoveUserScramCredentialRecord {
                    name: user,
                    mechanism: mechanism.type_id() as u32,
                },
            )));
    }
    for u in &req.upsertions {
        let user = u.name.to_string();
        if !users.contains(&user) {
            users.push(user.clone());
        }
        if user.is_empty() {
            fail(
                &user,
                ErrorCode::UnacceptableCredential,
                "Username must not be empty".into(),
                &mut failed,
            );
            continue;
        }
        let Some(mechanism) = ScramMechanism::from_type_id(u.mechanism) else {
            fail(
                &user,
                ErrorCode::UnsupportedSaslMechanism,
                "Unknown SCRAM mechanism".into(),
                &mut failed,
            );
            continue;
        };
        let iterations = u32::try_from(u.iterations).unwrap_or(0);
        if iterations < MIN_ITERATIONS {
            fail(
                &user,
                ErrorCode::UnacceptableCredential,
                format!("Too few iterations (minimum {MIN_ITERATIONS})"),
                &mut failed,
            );
            continue;
        }
        if iterations > MAX_ITERATIONS {
            fail(
                &user,
                ErrorCode::UnacceptableCredential,
                format!("Too many iterations (maximum {MAX_ITERATIONS})"),
                &mut failed,
            );
            continue;
        }
        if u.salt.is_empty() || u.salted_password.len() != mechanism.hash_len() {
            fail(
                &user,
                ErrorCode::UnacceptableCredential,
                format!(
                    "The salt must not be empty and the salted password must have {} bytes",
                    mechanism.hash_len()
                ),
                &mut failed,
            );
            continue;
        }
        let credential = ScramCredential::from_salted_password(
            mechanism,
            &u.salted_password,
            u.salt.to_vec(),
            iterations,
        );
        records
            .entry(user.clone())
            .or_default()
            .push(credential_record(&user, mechanism, &credential));
    }
    let mut out = Vec::new();
    let mut results = Vec::new();
    for user in users {
        let (code, message) = match failed.get(&user) {
            Some((c, m)) => (*c, Some(StrBytes::from_string(m.clone()))),
            None => {
                out.extend(records.remove(&user).unwrap_or_default());
                (ErrorCode::None, None)
            }
        };
        results.push(
            AlterUserScramCredentialsResult::default()
                .with_user(StrBytes::from_string(user))
                .with_error_code(code.code())
                .with_error_message(message),
        );
    }
    ControllerResult {
        records: out,
        response: AlterUserScramCredentialsResponse::default().with_results(results),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use kafka_protocol::messages::alter_user_scram_credentials_request::{
        ScramCredentialDeletion, ScramCredentialUpsertion,
    };
    use odradek_metadata::MetadataDelta;
    use std::sync::Arc;

    fn upsert(name: &str, m: ScramMechanism, iterations: i32) -> ScramCredentialUpsertion {
        let salt = b"salt".to_vec();
        ScramCredentialUpsertion::default()
            .with_name(StrBytes::from_string(name.into()))
            .with_mechanism(m.type_id())
            .with_iterations(iterations)
            .with_salt(Bytes::from(salt.clone()))
            .with_salted_password(Bytes::from(m.salted_password(b"pw", &salt, 4096)))
    }

    fn apply(image: &MetadataImage, records: &[proto::MetadataRecord]) -> MetadataImage {
        let mut d = MetadataDelta::new(Arc::new(image.clone()));
        for (i, r) in records.iter().enumerate() {
            d.replay(image.offset + 1 + i as i64, r).expect("replays");
        }
        d.apply()
    }

    #[test]
    fn add_scram_arguments_parse_as_kafka_storage_takes_them() {
        let r =
            bootstrap_credential("SCRAM-SHA-512=[name=admin,password=\"s3cret\",iterations=8192]")
                .expect("valid");
        let image = apply(&MetadataImage::empty(), &[r]);
        let c = image
            .scram_credential(ScramMechanism::Sha512, "admin")
            .expect("stored");
        assert_eq!(c.iterations, 8192);
        assert_eq!(c.salt.len(), 32);
        for bad in [
            "SCRAM-SHA-1=[name=a,password=b]",
            "SCRAM-SHA-256=name=a,password=b",
            "SCRAM-SHA-256=[password=b]",
            "SCRAM-SHA-256=[name=a,password=b,iterations=10]",
            "SCRAM-SHA-256=[name=a,password=b,colour=red]",
        ] {
            assert!(bootstrap_credential(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn upserts_and_deletes_with_kafkas_errors() {
        let image = MetadataImage::empty();
        let req = AlterUserScramCredentialsRequest::default().with_upsertions(vec![
            upsert("alice", ScramMechanism::Sha512, 4096),
            upsert("bob", ScramMechanism::Sha256, 100),
            upsert("carol", ScramMechanism::Sha256, 4096),
            upsert("carol", ScramMechanism::Sha256, 8192),
        ]);
        let r = alter_user_scram_credentials(&image, &req);
        let codes: Vec<(String, i16)> = r
            .response
            .results
            .iter()
            .map(|x| (x.user.to_string(), x.error_code))
            .collect();
        assert_eq!(
            codes,
            vec![
                ("alice".into(), 0),
                ("bob".into(), ErrorCode::UnacceptableCredential.code()),
                ("carol".into(), ErrorCode::DuplicateResource.code()),
            ]
        );
        assert_eq!(r.records.len(), 1);
        let image = apply(&image, &r.records);
        let c = image
            .scram_credential(ScramMechanism::Sha512, "alice")
            .expect("stored");
        let expected =
            ScramCredential::from_password(ScramMechanism::Sha512, "pw", b"salt".to_vec(), 4096);
        assert_eq!(c, expected);
        let del = AlterUserScramCredentialsRequest::default().with_deletions(vec![
            ScramCredentialDeletion::default()
                .with_name(StrBytes::from_static_str("alice"))
                .with_mechanism(2),
            ScramCredentialDeletion::default()
                .with_name(StrBytes::from_static_str("nobody"))
                .with_mechanism(1),
        ]);
        let r = alter_user_scram_credentials(&image, &del);
        assert_eq!(r.response.results[0].error_code, 0);
        assert_eq!(
            r.response.results[1].error_code,
            ErrorCode::ResourceNotFound.code()
        );
        let image = apply(&image, &r.records);
        assert!(image
            .scram_credential(ScramMechanism::Sha512, "alice")
            .is_none());
    }
}
