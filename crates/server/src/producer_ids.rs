//! Producer ids for InitProducerId: blocks of ids from the active controller
//! (AllocateProducerIds, recorded in the metadata log so no id is handed out twice), given out
//! one at a time. The next block is fetched in the background once 90% of the current one is
//! used (as Kafka's broker does), so InitProducerId rarely waits for the controller.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use odradek_common::ErrorCode;
use odradek_controller::pb;
use tokio::sync::Mutex;

use crate::controller_client::ControllerClient;

/// One block: ids `next..end`.
#[derive(Debug, Clone, Copy)]
struct Block {
    next: i64,
    end: i64,
}

impl Block {
    fn len(self) -> i64 {
        self.end - self.next
    }
}

/// Hands out producer ids from controller-allocated blocks.
#[derive(Debug)]
pub struct ProducerIdManager {
    broker_id: i32,
    broker_epoch: Arc<AtomicI64>,
    controller: ControllerClient,
    current: Mutex<Option<Block>>,
    /// A block fetched ahead of need.
    prefetched: Arc<Mutex<Option<Block>>>,
    prefetching: Arc<std::sync::atomic::AtomicBool>,
}

impl ProducerIdManager {
    /// A manager for broker `broker_id`, whose registration epoch is in `broker_epoch`.
    pub fn new(broker_id: i32, broker_epoch: Arc<AtomicI64>, controller: ControllerClient) -> Self {
        Self {
            broker_id,
            broker_epoch,
            controller,
            current: Mutex::new(None),
            prefetched: Arc::new(Mutex::new(None)),
            prefetching: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        }
    }

    /// The next unused producer id. COORDINATOR_LOAD_IN_PROGRESS (retriable) when no block
    /// can be had from the controller in time.
    pub async fn next(&self) -> Result<i64, (ErrorCode, String)> {
        let mut current = self.current.lock().await;
        let block = match *current {
            Some(b) if b.len() > 0 => b,
            _ => {
                let b = match self.prefetched.lock().await.take() {
                    Some(b) => b,
                    None => allocate(&self.controller, self.broker_id, &self.broker_epoch).await?,
                };
                self.maybe_prefetch_for(b, b);
                b
            }
        };
        let id = block.next;
        let left = Block {
            next: id + 1,
            end: block.end,
        };
        *current = Some(left);
        self.maybe_prefetch_for(left, block);
        Ok(id)
    }

    /// Starts fetching the next block once less than a tenth of `whole` is left in `left`.
    fn maybe_prefetch_for(&self, left: Block, whole: Block) {
        let size = (whole.end - whole.next).max(1);
        if left.len() * 10 > size || self.prefetching.swap(true, Ordering::AcqRel) {
            return;
        }
        let (controller, epoch, id) = (
            self.controller.clone(),
            Arc::clone(&self.broker_epoch),
            self.broker_id,
        );
        let (prefetched, prefetching) =
            (Arc::clone(&self.prefetched), Arc::clone(&self.prefetching));
        tokio::spawn(async move {
            let mut slot = prefetched.lock().await;
            if slot.is_none() {
                match allocate(&controller, id, &epoch).await {
                    Ok(b) => *slot = Some(b),
                    Err((_, message)) => {
                        tracing::warn!(%message, "cannot prefetch a producer id block")
                    }
                }
            }
            prefetching.store(false, Ordering::Release);
        });
    }
}

async fn allocate(
    controller: &ControllerClient,
    broker_id: i32,
    broker_epoch: &AtomicI64,
) -> Result<Block, (ErrorCode, String)> {
    let unavailable = |m: String| {
        (
            ErrorCode::CoordinatorLoadInProgress,
            format!("no producer id block from the controller: {m}"),
        )
    };
    let request = pb::AllocateProducerIdsRequest {
        broker_id,
        broker_epoch: broker_epoch.load(Ordering::Acquire),
    };
    let r = controller
        .call(Duration::from_secs(5), |mut c| async move {
            c.allocate_producer_ids(request).await
        })
        .await
        .map_err(|s| unavailable(s.message().to_string()))?;
    if r.error_code != 0 || r.producer_id_len <= 0 {
        return Err(unavailable(format!(
            "error {}: {}",
            r.error_code, r.error_message
        )));
    }
    tracing::info!(
        start = r.producer_id_start,
        len = r.producer_id_len,
        "allocated a producer id block"
    );
    Ok(Block {
        next: r.producer_id_start,
        end: r.producer_id_start + i64::from(r.producer_id_len),
    })
}
