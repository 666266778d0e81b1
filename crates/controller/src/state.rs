//! The metadata state machine the quorum feeds: committed record batches are replayed into the
//! image through `MetadataDelta` (the one replay path), and each new image is published as an
//! `Arc` through a `watch`, so readers always see a whole image.

use std::sync::Arc;

use odradek_metadata::{
    decode_batch, decode_snapshot, encode_snapshot, MetadataDelta, MetadataImage,
};
use odradek_quorum::StateMachine;
use tokio::sync::watch;

/// Replays committed batches; publishes images.
#[derive(Debug)]
pub struct MetadataStateMachine {
    image: Arc<MetadataImage>,
    publish: watch::Sender<Arc<MetadataImage>>,
}

impl MetadataStateMachine {
    /// A state machine starting from the empty image, and the receiver of its images.
    pub fn new() -> (Self, watch::Receiver<Arc<MetadataImage>>) {
        let image = Arc::new(MetadataImage::empty());
        let (publish, rx) = watch::channel(Arc::clone(&image));
        (Self { image, publish }, rx)
    }
}

impl StateMachine for MetadataStateMachine {
    fn apply(&mut self, index: u64, data: &[u8]) {
        let offset = index as i64;
        let records = match decode_batch(data) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(offset, error = %e, "undecodable metadata entry; skipping it");
                return;
            }
        };
        let mut delta = MetadataDelta::new(Arc::clone(&self.image));
        for r in &records {
            if let Err(e) = delta.replay(offset, r) {
                // The active controller only commits records that replay; this is a bug or a
                // corrupt log, and skipping the record keeps every voter in step.
                tracing::error!(offset, error = %e, "metadata record does not replay; skipping it");
            }
        }
        let mut image = delta.apply();
        image.offset = offset;
        self.image = Arc::new(image);
        self.publish.send_replace(Arc::clone(&self.image));
    }

    fn snapshot(&self) -> Vec<u8> {
        encode_snapshot(&self.image)
    }

    fn restore(&mut self, index: u64, data: &[u8]) {
        match decode_snapshot(data) {
            Ok(mut image) => {
                image.offset = index as i64;
                self.image = Arc::new(image);
                self.publish.send_replace(Arc::clone(&self.image));
            }
            Err(e) => tracing::error!(index, error = %e, "cannot load metadata snapshot"),
        }
    }
}
