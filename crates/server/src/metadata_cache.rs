//! The broker's metadata cache: follows the controllers' FetchMetadata stream (from any voter,
//! resuming after the last applied offset) and replays it into an image, published whole.

use std::sync::Arc;
use std::time::Duration;

use odradek_controller::pb::{self, metadata_update::Update};
use odradek_metadata::{decode_batch, decode_snapshot, MetadataDelta, MetadataImage};
use tokio::sync::watch;

use crate::controller_client::ControllerClient;

/// Follows the metadata log until `stop` becomes true.
pub async fn follow(
    client: ControllerClient,
    broker_id: i32,
    publish: watch::Sender<Arc<MetadataImage>>,
    mut stop: watch::Receiver<bool>,
) {
    let mut attempt = 0usize;
    loop {
        if *stop.borrow() {
            return;
        }
        let from = publish.borrow().offset + 1;
        let mut c = client.any(attempt);
        attempt += 1;
        let stream = tokio::select! {
            r = c.fetch_metadata(pb::FetchMetadataRequest { broker_id, from_offset: from }) => r,
            _ = crate::until_stopped(&mut stop) => return,
        };
        let mut stream = match stream {
            Ok(s) => s.into_inner(),
            Err(e) => {
                tracing::debug!(error = %e, "metadata stream unavailable; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        loop {
            let msg = tokio::select! {
                m = stream.message() => m,
                _ = crate::until_stopped(&mut stop) => return,
            };
            let update = match msg {
                Ok(Some(u)) => u,
                Ok(None) | Err(_) => break,
            };
            let current = Arc::clone(&publish.borrow());
            let next = match update.update {
                Some(Update::Snapshot(bytes)) => match decode_snapshot(&bytes) {
                    Ok(i) => i,
                    Err(e) => {
                        tracing::error!(error = %e, "undecodable metadata snapshot");
                        break;
                    }
                },
                Some(Update::Entry(e)) => {
                    if e.offset <= current.offset {
                        continue;
                    }
                    let mut delta = MetadataDelta::new(Arc::clone(&current));
                    match decode_batch(&e.records) {
                        Ok(records) => {
                            for r in &records {
                                if let Err(err) = delta.replay(e.offset, r) {
                                    tracing::error!(offset = e.offset, error = %err, "metadata record does not replay; skipping it");
                                }
                            }
                        }
                        Err(err) => {
                            tracing::error!(offset = e.offset, error = %err, "undecodable metadata entry")
                        }
                    }
                    let mut image = delta.apply();
                    image.offset = e.offset;
                    image
                }
                None => continue,
            };
            publish.send_replace(Arc::new(next));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
