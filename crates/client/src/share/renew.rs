//! Renewing acquisition locks (KIP-1222): ShareAcknowledge v2 with `IsRenewAck` and RENEW
//! acknowledgements. The `kafka-protocol` crate encodes ShareAcknowledge up to v1, so the request
//! is its v1 body with the v2 field put in, and the answer's v2 field is taken out
//! (`odradek_common::share_v2`).

use std::collections::BTreeMap;

use kafka_protocol::messages::{ApiKey, ShareAcknowledgeRequest};
use odradek_common::share_v2;

use super::acknowledgements::{batches, next_epoch, AckBatch, SharePartition};
use super::requests::acknowledge_request;
use super::{ShareMember, ShareRecord, INVALID_SHARE_SESSION_EPOCH, SHARE_SESSION_NOT_FOUND};
use crate::error::ClientError;

/// The RENEW acknowledge type.
const RENEW: i8 = 4;

impl ShareMember {
    /// Renews the acquisition locks of `records` (handed out by [`ShareMember::poll`]): each
    /// stays this member's for a whole lock duration again, its delivery count unchanged. They
    /// are still to be acknowledged (the next poll accepts them, unless
    /// [`ShareMember::acknowledge`] says otherwise). A record whose lock already ran out or
    /// went to another member is reported in [`ShareMember::take_failures`] (its partition's
    /// INVALID_RECORD_STATE). Needs a broker serving ShareAcknowledge v2.
    pub async fn renew(&mut self, records: &[ShareRecord]) -> Result<(), ClientError> {
        let mut by_leader: BTreeMap<i32, BTreeMap<SharePartition, BTreeMap<i64, i8>>> =
            BTreeMap::new();
        for r in records {
            let tp = r.share_partition();
            if let Some(leader) = self.ack_leader(&tp) {
                by_leader
                    .entry(leader)
                    .or_default()
                    .entry(tp)
                    .or_default()
                    .insert(r.record.offset, RENEW);
            }
        }
        for (leader, partitions) in by_leader {
            let sent: BTreeMap<SharePartition, Vec<AckBatch>> = partitions
                .iter()
                .map(|(tp, acks)| (*tp, batches(acks)))
                .collect();
            self.send_renewal(leader, &sent).await?;
        }
        Ok(())
    }

    async fn send_renewal(
        &mut self,
        leader: i32,
        sent: &BTreeMap<SharePartition, Vec<AckBatch>>,
    ) -> Result<(), ClientError> {
        let Some(epoch) = self
            .sessions
            .get(&leader)
            .map(|s| s.epoch)
            .filter(|e| *e > 0)
        else {
            // No open session with that leader: nothing was acquired through it.
            return Ok(());
        };
        let req = acknowledge_request(self.sender(), epoch, sent);
        let session = self.sessions.get_mut(&leader).expect("checked above");
        if session.conn.version(ApiKey::ShareAcknowledge, 2)? < 2 {
            return Err(ClientError::Protocol(
                "the broker cannot renew acquisition locks (no ShareAcknowledge v2)".into(),
            ));
        }
        let resp = session
            .conn
            .send_newer::<ShareAcknowledgeRequest>(&req, 2, 1, renewing_request, older_response)
            .await;
        let resp = match resp {
            Ok(r) => r,
            Err(e) => {
                self.sessions.remove(&leader);
                self.lost(sent, &e);
                return Err(e);
            }
        };
        if resp.error_code != 0 {
            let e = ClientError::Kafka {
                code: resp.error_code,
                message: resp.error_message.map(|m| m.to_string()),
            };
            self.lost(sent, &e);
            self.sessions.remove(&leader);
            let session_gone = matches!(
                resp.error_code,
                SHARE_SESSION_NOT_FOUND | INVALID_SHARE_SESSION_EPOCH
            );
            return if session_gone { Ok(()) } else { Err(e) };
        }
        if let Some(s) = self.sessions.get_mut(&leader) {
            s.epoch = next_epoch(epoch);
        }
        self.fail_partitions(resp.responses);
        Ok(())
    }
}

/// A v1 ShareAcknowledge body made v2 with `IsRenewAck` true.
fn renewing_request(v1: &[u8]) -> Result<Vec<u8>, String> {
    let at = share_v2::request_fields_at(false, v1).map_err(|e| e.to_string())?;
    Ok([&v1[..at], &[1], &v1[at..]].concat())
}

/// A v2 ShareAcknowledge response body made v1 (its `AcquisitionLockTimeoutMs` taken out).
fn older_response(v2: &[u8]) -> Result<Vec<u8>, String> {
    let at = share_v2::ack_response_timeout_at(v2).map_err(|e| e.to_string())?;
    if v2.len() < at + 4 {
        return Err("truncated at AcquisitionLockTimeoutMs".into());
    }
    Ok([&v2[..at], &v2[at + 4..]].concat())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_renew_flag_goes_in_after_the_epoch_and_the_lock_timeout_comes_out() {
        // GroupId "g", MemberId "m", epoch 1, no topics, no tags.
        let v1 = [2, b'g', 2, b'm', 0, 0, 0, 1, 1, 0];
        assert_eq!(
            renewing_request(&v1).expect("made v2"),
            [2, b'g', 2, b'm', 0, 0, 0, 1, 1, 1, 0]
        );
        // ThrottleTimeMs, ErrorCode, null ErrorMessage, 30000, then the rest.
        let v2 = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0x75, 0x30, 1, 1, 0];
        assert_eq!(
            older_response(&v2).expect("made v1"),
            [0, 0, 0, 0, 0, 0, 0, 1, 1, 0]
        );
        assert!(older_response(&v2[..9]).is_err());
    }
}
