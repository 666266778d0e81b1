//! DescribeQuorum (for `__cluster_metadata`-0): the controller quorum's leader, epoch, high
//! watermark and each voter's log end, asked of the active controller.

use std::time::Duration;

use kafka_protocol::messages::describe_quorum_response::{PartitionData, ReplicaState, TopicData};
use kafka_protocol::messages::{
    BrokerId, DescribeQuorumRequest, DescribeQuorumResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use odradek_common::ErrorCode;
use odradek_controller::pb;
use odradek_frontend::RequestContext;

use super::Broker;

pub(super) async fn describe(
    broker: &Broker,
    ctx: &RequestContext,
    _req: DescribeQuorumRequest,
) -> DescribeQuorumResponse {
    let topic = TopicName(StrBytes::from_static_str("__cluster_metadata"));
    match broker
        .controller
        .call(Duration::from_secs(10), |mut c| async move {
            c.describe_quorum(pb::DescribeQuorumRequest {}).await
        })
        .await
    {
        Ok(d) => {
            let voters = d
                .voters
                .iter()
                .map(|v| {
                    let r = ReplicaState::default()
                        .with_replica_id(BrokerId(v.voter_id))
                        .with_log_end_offset(v.log_end_offset);
                    // The timestamps exist from v1; Odradek does not track them yet (-1).
                    if ctx.api_version >= 1 {
                        r.with_last_fetch_timestamp(-1)
                            .with_last_caught_up_timestamp(-1)
                    } else {
                        r
                    }
                })
                .collect();
            let partition = PartitionData::default()
                .with_partition_index(0)
                .with_leader_id(BrokerId(d.leader_id))
                .with_leader_epoch(d.leader_epoch as i32)
                .with_high_watermark(d.high_watermark)
                .with_current_voters(voters);
            DescribeQuorumResponse::default().with_topics(vec![TopicData::default()
                .with_topic_name(topic)
                .with_partitions(vec![partition])])
        }
        Err(e) => {
            let r =
                DescribeQuorumResponse::default().with_error_code(ErrorCode::NotController.code());
            if ctx.api_version >= 2 {
                r.with_error_message(Some(StrBytes::from_string(e.message().to_string())))
            } else {
                r
            }
        }
    }
}
