//! The broker's metadata cache: follows the controllers' FetchMetadata stream (from any voter,
//! resuming after the last applied offset) and replays it into an image, published whole to
//! readers (handlers, registration) and, as the changes since the last one taken, to the
//! publishers that act on them (the replica manager).
//!
//! A starting broker replays the log from its beginning (or a snapshot): the changes feed holds
//! the images it passes through until it has caught up to the committed offset the controller
//! reported first and to this process's own registration (Kafka's broker likewise waits to be
//! caught up past its registration), so its replicas never act on a stale image: an old epoch
//! in which this broker led, as its previous process, with a log tail the ISR may never have had
//! (the registration moves those leaderships away, bumping their epochs).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use odradek_controller::pb::{self, metadata_update::Update};
use odradek_controller::service::METADATA_KEEPALIVE;
use odradek_metadata::{
    decode_batch, decode_snapshot, MetadataChanges, MetadataDelta, MetadataImage,
};
use tokio::sync::{watch, Notify};

use crate::controller_client::ControllerClient;

/// The metadata changes not yet taken by the replica manager, merged in order.
#[derive(Debug, Default)]
pub struct ChangeFeed {
    pending: Mutex<Pending>,
    notify: Notify,
}

#[derive(Debug, Default)]
struct Pending {
    changes: MetadataChanges,
    /// The image the changes made (the last pushed).
    image: Option<Arc<MetadataImage>>,
    /// Pushed since last taken (changes may be empty: the image still moved on).
    fresh: bool,
    /// The offset of the image last taken: a marker that moves nothing is not handed out.
    taken: Option<i64>,
    /// The committed offset to reach before the first changes are handed out (`None`: not
    /// known yet).
    catch_up_to: Option<i64>,
    caught_up: bool,
    /// (broker id, incarnation id): the registration an image must hold before the first
    /// changes are handed out (`None`: no such condition).
    registration: Option<(i32, odradek_common::Uuid)>,
}

impl ChangeFeed {
    /// The feed of broker `broker_id` running as `incarnation`: nothing is handed out before an
    /// image holds that registration.
    pub fn for_broker(broker_id: i32, incarnation: odradek_common::Uuid) -> Self {
        let feed = Self::default();
        feed.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .registration = Some((broker_id, incarnation));
        feed
    }

    /// Adds the changes that made `image`, complete up to `offset` (the image's offset, or the
    /// commit a marker vouches for); `committed` is the controller's committed offset when it
    /// was sent.
    fn push(
        &self,
        changes: MetadataChanges,
        image: Arc<MetadataImage>,
        offset: i64,
        committed: i64,
    ) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        p.changes.merge(changes);
        p.image = Some(image);
        p.fresh = true;
        if !p.caught_up {
            let target = *p.catch_up_to.get_or_insert(committed);
            if offset < target {
                return;
            }
            let registered = p.registration.is_none_or(|(id, incarnation)| {
                p.image
                    .as_ref()
                    .and_then(|i| i.cluster.brokers.get(&id))
                    .is_some_and(|b| b.incarnation_id == incarnation)
            });
            if !registered {
                return;
            }
            p.caught_up = true;
            tracing::info!(
                offset,
                "metadata caught up; publishing to the replica manager"
            );
        }
        drop(p);
        self.notify.notify_one();
    }

    /// Waits for a new image (once caught up) and takes the changes since the last one taken,
    /// with the image they made: acting on them against that image applies it whole.
    pub async fn next(&self) -> (MetadataChanges, Arc<MetadataImage>) {
        loop {
            {
                let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
                if p.caught_up && p.fresh {
                    p.fresh = false;
                    if let Some(image) = p.image.clone() {
                        let moved = p.taken != Some(image.offset) || !p.changes.is_empty();
                        if moved {
                            p.taken = Some(image.offset);
                            return (std::mem::take(&mut p.changes), image);
                        }
                    }
                }
            }
            self.notify.notified().await;
        }
    }
}

/// Follows the metadata log until `stop` becomes true.
pub async fn follow(
    client: ControllerClient,
    broker_id: i32,
    publish: watch::Sender<Arc<MetadataImage>>,
    feed: Arc<ChangeFeed>,
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
            // Voters send a marker every METADATA_KEEPALIVE while idle: silence for several
            // means the voter stopped answering (paused, cut off); stream from another.
            let msg = tokio::select! {
                m = tokio::time::timeout(4 * METADATA_KEEPALIVE, stream.message()) => m,
                _ = crate::until_stopped(&mut stop) => return,
            };
            let update = match msg {
                Ok(Ok(Some(u))) => u,
                Ok(Ok(None)) | Ok(Err(_)) => break,
                Err(_) => {
                    tracing::warn!(
                        voter = attempt - 1,
                        "metadata stream silent; trying another voter"
                    );
                    break;
                }
            };
            let current = Arc::clone(&publish.borrow());
            let (next, changes) = match update.update {
                Some(Update::Snapshot(bytes)) => match decode_snapshot(&bytes) {
                    Ok(i) => (i, MetadataChanges::everything()),
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
                    let changes = delta.changes();
                    let mut image = delta.apply();
                    image.offset = e.offset;
                    (image, changes)
                }
                None => {
                    // Everything up to the commit has been sent (the rest were no-ops).
                    let at = update.high_watermark;
                    feed.push(MetadataChanges::default(), current, at, at);
                    continue;
                }
            };
            let offset = next.offset;
            let next = Arc::new(next);
            publish.send_replace(Arc::clone(&next));
            feed.push(changes, next, offset, update.high_watermark);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(i: u8) -> MetadataChanges {
        let mut c = MetadataChanges::default();
        c.topics.extend(odradek_common::Uuid::from_slice(&[i; 16]));
        c
    }

    #[tokio::test]
    async fn changes_wait_for_the_initial_catch_up_then_come_merged() {
        let feed = ChangeFeed::default();
        let image = |offset| {
            let mut i = MetadataImage::empty();
            i.offset = offset;
            Arc::new(i)
        };
        // Replaying a log committed up to 7: images 3 and 5 are stale, not handed out.
        feed.push(topic(1), image(3), 3, 7);
        feed.push(topic(2), image(5), 5, 9);
        let early = tokio::time::timeout(Duration::from_millis(50), feed.next()).await;
        assert!(early.is_err(), "changes handed out before the catch-up");
        feed.push(topic(3), image(7), 7, 9);
        let (c, i) = feed.next().await;
        assert_eq!(i.offset, 7, "with the image the changes made");
        assert_eq!(
            c.topics,
            [topic(1), topic(2), topic(3)]
                .into_iter()
                .flat_map(|c| c.topics)
                .collect()
        );
        // Caught up: each new image is handed out, even one that changed nothing the replica
        // manager sees; a keepalive marker (the same image) is not.
        feed.push(MetadataChanges::default(), image(8), 8, 9);
        let c = tokio::time::timeout(Duration::from_millis(50), feed.next()).await;
        assert_eq!(
            c.ok().map(|(c, i)| (c, i.offset)),
            Some((MetadataChanges::default(), 8))
        );
        let none = tokio::time::timeout(Duration::from_millis(50), feed.next()).await;
        assert!(none.is_err(), "nothing new, nothing handed out");
        feed.push(MetadataChanges::default(), image(8), 9, 9);
        let marker = tokio::time::timeout(Duration::from_millis(50), feed.next()).await;
        assert!(
            marker.is_err(),
            "a keepalive marker on the same image is not handed out"
        );
    }

    #[tokio::test]
    async fn a_marker_at_the_commit_ends_the_catch_up() {
        let feed = ChangeFeed::default();
        let image = Arc::new(MetadataImage::empty());
        feed.push(topic(1), Arc::clone(&image), 4, 6);
        // Offsets 5 and 6 were Raft no-ops: the controller's marker says 6 is reached.
        feed.push(MetadataChanges::default(), image, 6, 6);
        let c = tokio::time::timeout(Duration::from_millis(50), feed.next()).await;
        assert_eq!(c.ok().map(|(c, _)| c.topics.len()), Some(1));
    }

    #[tokio::test]
    async fn nothing_is_handed_out_before_this_process_is_registered() {
        use odradek_common::Uuid;
        use odradek_metadata::BrokerRegistration;
        let (old, new) = (Uuid([1; 16]), Uuid([2; 16]));
        let feed = ChangeFeed::for_broker(4, new);
        let image = |offset, incarnation| {
            let mut i = MetadataImage::empty();
            i.offset = offset;
            Arc::make_mut(&mut i.cluster).brokers.insert(
                4,
                BrokerRegistration {
                    id: 4,
                    epoch: 1,
                    incarnation_id: incarnation,
                    endpoints: vec![],
                    rack: None,
                    fenced: false,
                    in_controlled_shutdown: false,
                    log_dirs: vec![],
                },
            );
            Arc::new(i)
        };
        // Caught up to the commit, but the image still holds the previous process (in which
        // this broker may lead under an old epoch): held back.
        feed.push(topic(1), image(5, old), 5, 5);
        let early = tokio::time::timeout(Duration::from_millis(50), feed.next()).await;
        assert!(
            early.is_err(),
            "an image of the previous process was handed out"
        );
        // The new registration (which moved the old leaderships away) arrives: everything goes.
        feed.push(topic(2), image(6, new), 6, 6);
        let (c, i) = feed.next().await;
        assert_eq!((c.topics.len(), i.offset), (2, 6));
    }
}
