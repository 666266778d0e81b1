//! Kafka admin requests forwarded by brokers as they came (Kafka's Envelope, KIP-590): decoded
//! with the Kafka codecs, run by their control manager, the response encoded back.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};
use odradek_common::{ErrorCode, Uuid};
use odradek_metadata::MetadataImage;

use crate::managers::{acls, quotas, scram, ControllerResult};
use crate::pb;

/// The APIs the controller takes in an envelope.
pub const FORWARDED: [ApiKey; 4] = [
    ApiKey::CreateAcls,
    ApiKey::DeleteAcls,
    ApiKey::AlterUserScramCredentials,
    ApiKey::AlterClientQuotas,
];

fn refused(code: ErrorCode, message: String) -> ControllerResult<pb::EnvelopeResponse> {
    ControllerResult::answer(pb::EnvelopeResponse {
        response_data: Vec::new(),
        error_code: i32::from(code.code()),
        error_message: message,
        committed_offset: -1,
    })
}

/// Runs one forwarded request against `image`.
pub fn handle(
    image: &MetadataImage,
    req: &pb::EnvelopeRequest,
    new_id: &mut dyn FnMut() -> Uuid,
) -> ControllerResult<pb::EnvelopeResponse> {
    let key = i16::try_from(req.api_key)
        .ok()
        .and_then(|k| ApiKey::try_from(k).ok())
        .filter(|k| FORWARDED.contains(k));
    let Some(key) = key else {
        return refused(
            ErrorCode::InvalidRequest,
            format!("API {} is not forwarded to the controller", req.api_key),
        );
    };
    let Ok(version) = i16::try_from(req.api_version) else {
        return refused(ErrorCode::UnsupportedVersion, "bad version".into());
    };
    if !(key.valid_versions().min..=key.valid_versions().max).contains(&version) {
        return refused(
            ErrorCode::UnsupportedVersion,
            format!("{key:?} version {version} is not supported"),
        );
    }
    let mut data = Bytes::from(req.request_data.clone());
    let request = match RequestKind::decode(key, &mut data, version) {
        Ok(r) => r,
        Err(e) => {
            return refused(
                ErrorCode::InvalidRequest,
                format!("cannot decode {key:?}: {e}"),
            )
        }
    };
    let result: ControllerResult<ResponseKind> = match request {
        RequestKind::CreateAcls(r) => map(
            acls::create_acls(image, &r, new_id),
            ResponseKind::CreateAcls,
        ),
        RequestKind::DeleteAcls(r) => map(acls::delete_acls(image, &r), ResponseKind::DeleteAcls),
        RequestKind::AlterUserScramCredentials(r) => map(
            scram::alter_user_scram_credentials(image, &r),
            ResponseKind::AlterUserScramCredentials,
        ),
        RequestKind::AlterClientQuotas(r) => map(
            quotas::alter_client_quotas(image, &r),
            ResponseKind::AlterClientQuotas,
        ),
        _ => {
            return refused(
                ErrorCode::InvalidRequest,
                format!("{key:?} is not forwarded"),
            )
        }
    };
    let mut out = BytesMut::new();
    if let Err(e) = result.response.encode(&mut out, version) {
        return refused(
            ErrorCode::UnknownServerError,
            format!("cannot encode the response: {e}"),
        );
    }
    ControllerResult {
        records: result.records,
        response: pb::EnvelopeResponse {
            response_data: out.to_vec(),
            error_code: 0,
            error_message: String::new(),
            committed_offset: -1,
        },
    }
}

fn map<T>(r: ControllerResult<T>, f: fn(T) -> ResponseKind) -> ControllerResult<ResponseKind> {
    ControllerResult {
        records: r.records,
        response: f(r.response),
    }
}
