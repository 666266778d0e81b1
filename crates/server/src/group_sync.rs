//! fsync before acknowledgement (`log.flush.before.ack=true`), as a group commit per log
//! directory.
//!
//! Every append (a leader's produce, a follower's replicated batches) asks its directory's
//! syncer to make the segment file it wrote durable, and its acknowledgement waits for that:
//! the produce response (acks=1 and acks=all), or the follower's next fetch, which reports the
//! new log end to the leader (so the high watermark only counts durable copies, as with Kafka's
//! `flush.messages=1`). The syncer is one thread per directory: it takes every request that
//! arrived, `fdatasync`s each distinct file once, answers them all, and starts over with what
//! arrived meanwhile. One sync thus covers every append that came in while the previous one
//! ran, and the cost per append falls as the load rises. A failed sync answers
//! KAFKA_STORAGE_ERROR and takes the directory offline, as any I/O error there does.

use std::sync::mpsc;
use std::sync::Arc;

use odradek_log::SegmentFile;
use prometheus_client::metrics::counter::Counter;
use tokio::sync::oneshot;

/// What a sync answers: `Err` with the error's text when the file could not be synced.
pub(crate) type Synced = Result<(), String>;

struct Request {
    file: SegmentFile,
    done: oneshot::Sender<Synced>,
}

/// One log directory's syncer thread (it ends when the last handle is dropped).
#[derive(Debug)]
pub(crate) struct GroupSync {
    requests: mpsc::Sender<Request>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request").field("file", &self.file).finish()
    }
}

impl GroupSync {
    /// Starts the syncer of the directory `name` (used in the thread's name), counting its
    /// rounds and the requests they answered.
    pub(crate) fn start(
        name: &str,
        rounds: Counter,
        requests: Counter,
    ) -> std::io::Result<Arc<Self>> {
        let (tx, rx) = mpsc::channel::<Request>();
        std::thread::Builder::new()
            .name(format!("odradek-sync-{name}"))
            .spawn(move || run(rx, &rounds, &requests))?;
        Ok(Arc::new(Self { requests: tx }))
    }

    /// Asks for `file` to be synced; the answer comes once a sync that started after this call
    /// has finished. Dropping the receiver leaves the sync to happen anyway (acks=0).
    pub(crate) fn sync(&self, file: SegmentFile) -> oneshot::Receiver<Synced> {
        let (done, rx) = oneshot::channel();
        if let Err(mpsc::SendError(r)) = self.requests.send(Request { file, done }) {
            let _ = r
                .done
                .send(Err("the log directory's syncer stopped".into()));
        }
        rx
    }
}

/// Waits for a sync asked with [`GroupSync::sync`].
pub(crate) async fn synced(rx: oneshot::Receiver<Synced>) -> Synced {
    rx.await
        .unwrap_or_else(|_| Err("the log directory's syncer stopped".into()))
}

fn run(rx: mpsc::Receiver<Request>, rounds: &Counter, requests: &Counter) {
    let mut round: Vec<Request> = Vec::new();
    let mut files: Vec<(SegmentFile, Synced)> = Vec::new();
    while let Ok(first) = rx.recv() {
        round.push(first);
        round.extend(rx.try_iter());
        for r in &round {
            if files.iter().any(|(f, _)| f.same_file(&r.file)) {
                continue;
            }
            let outcome = r.file.sync_data().map_err(|e| e.to_string());
            files.push((r.file.clone(), outcome));
        }
        rounds.inc();
        requests.inc_by(round.len() as u64);
        for r in round.drain(..) {
            let outcome = files
                .iter()
                .find(|(f, _)| f.same_file(&r.file))
                .map_or(Ok(()), |(_, o)| o.clone());
            let _ = r.done.send(outcome);
        }
        files.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use odradek_log::{Log, LogConfig};

    fn batch() -> bytes::Bytes {
        use odradek_log::records::{encode_batch, Compression, NewRecord};
        encode_batch(&[NewRecord::value("v", 0)], Compression::None).expect("batch")
    }

    #[tokio::test]
    async fn every_request_is_answered_after_a_sync_of_its_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = Log::open(dir.path(), LogConfig::default(), 0).expect("open");
        let (rounds, requests) = (Counter::default(), Counter::default());
        let sync = GroupSync::start("test", rounds.clone(), requests.clone()).expect("start");
        let mut waits = Vec::new();
        for _ in 0..50 {
            log.append_as_leader(&batch(), 0, 0).expect("append");
            waits.push(sync.sync(log.active_segment_file()));
        }
        for w in waits {
            synced(w).await.expect("synced");
        }
        assert_eq!(requests.get(), 50);
        assert!((1..=50).contains(&rounds.get()), "{} rounds", rounds.get());
    }
}
