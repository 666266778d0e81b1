//! The broker's client of the controller quorum: finds the active controller (following
//! NOT_CONTROLLER hints, trying each voter otherwise) and retries until a deadline.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use odradek_controller::pb::controller_service_client::ControllerServiceClient;
use odradek_controller::service::LEADER_ID_KEY;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct ControllerClient {
    voters: Arc<Vec<(u64, Channel)>>,
    current: Arc<AtomicUsize>,
}

impl ControllerClient {
    /// Channels to every voter (connected lazily).
    pub fn new(voters: &BTreeMap<u64, String>) -> Result<Self, String> {
        let mut out = Vec::new();
        for (id, addr) in voters {
            let channel = Endpoint::from_shared(format!("http://{addr}"))
                .map_err(|e| format!("voter {id} address {addr}: {e}"))?
                .connect_timeout(Duration::from_secs(1))
                .timeout(Duration::from_secs(10))
                .connect_lazy();
            out.push((*id, channel));
        }
        Ok(Self {
            voters: Arc::new(out),
            current: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// A client of the voter believed to be active.
    pub fn active(&self) -> ControllerServiceClient<Channel> {
        let i = self.current.load(Ordering::Relaxed) % self.voters.len();
        ControllerServiceClient::new(self.voters[i].1.clone())
            .max_decoding_message_size(odradek_quorum::MAX_MESSAGE_BYTES)
    }

    /// A client of any voter, rotating: for reads every voter serves (FetchMetadata).
    pub fn any(&self, attempt: usize) -> ControllerServiceClient<Channel> {
        let i = attempt % self.voters.len();
        ControllerServiceClient::new(self.voters[i].1.clone())
            .max_decoding_message_size(odradek_quorum::MAX_MESSAGE_BYTES)
    }

    fn follow(&self, status: &Status) {
        let hinted = status
            .metadata()
            .get(LEADER_ID_KEY)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .and_then(|id| self.voters.iter().position(|(v, _)| *v == id));
        match hinted {
            Some(i) => self.current.store(i, Ordering::Relaxed),
            None => {
                self.current.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Calls the active controller, retrying on NOT_CONTROLLER and unreachable voters until
    /// `timeout` has passed. Each attempt gets a third of `timeout` (at least a second, at most
    /// what is left): a voter that accepts connections but does not answer (a paused process,
    /// a partitioned host) must not eat the whole budget, or a broker's heartbeats would miss
    /// `broker.session.timeout.ms` while the new active controller waits for them.
    pub async fn call<T, F, Fut>(&self, timeout: Duration, f: F) -> Result<T, Status>
    where
        F: Fn(ControllerServiceClient<Channel>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let deadline = Instant::now() + timeout;
        let per_attempt = (timeout / 3).max(Duration::from_secs(1));
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let attempt = tokio::time::timeout(
                per_attempt.min(left).max(Duration::from_millis(100)),
                f(self.active()),
            )
            .await
            .unwrap_or_else(|_| {
                Err(Status::deadline_exceeded(
                    "the voter did not answer in time",
                ))
            });
            match attempt {
                Ok(r) => return Ok(r.into_inner()),
                Err(s)
                    if matches!(
                        s.code(),
                        Code::Unavailable
                            | Code::Unknown
                            | Code::Cancelled
                            | Code::DeadlineExceeded
                    ) =>
                {
                    if Instant::now() > deadline {
                        return Err(s);
                    }
                    self.follow(&s);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(s) => return Err(s),
            }
        }
    }
}
