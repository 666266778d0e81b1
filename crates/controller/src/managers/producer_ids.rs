//! Producer-id blocks for idempotent and transactional producers.

use odradek_metadata::proto::{self, metadata_record::Record};
use odradek_metadata::MetadataImage;

use super::{check_broker_epoch, rec, ControllerResult, ControllerSettings};
use crate::pb;

/// AllocateProducerIds: the next block of `producer_id_block_size` ids to a registered broker.
pub fn allocate_producer_ids(
    image: &MetadataImage,
    request: &pb::AllocateProducerIdsRequest,
    settings: &ControllerSettings,
) -> ControllerResult<pb::AllocateProducerIdsResponse> {
    if let Err((code, message)) = check_broker_epoch(image, request.broker_id, request.broker_epoch)
    {
        return ControllerResult::answer(pb::AllocateProducerIdsResponse {
            error_code: code,
            error_message: message,
            producer_id_start: -1,
            producer_id_len: 0,
        });
    }
    let start = image.producer_ids.next_producer_id;
    let len = settings.producer_id_block_size;
    ControllerResult {
        records: vec![rec(Record::ProducerIds(proto::ProducerIdsRecord {
            broker_id: request.broker_id,
            broker_epoch: request.broker_epoch,
            next_producer_id: start + len,
        }))],
        response: pb::AllocateProducerIdsResponse {
            producer_id_start: start,
            producer_id_len: len as i32,
            ..Default::default()
        },
    }
}
