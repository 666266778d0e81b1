//! The broker's client of the controller quorum: finds the active controller (following
//! NOT_CONTROLLER hints, trying each voter otherwise) and retries until a deadline.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use odradek_controller::pb::controller_service_client::ControllerServiceClient;
use odradek_controller::service::LEADER_ID_KEY;
use tonic::transport::Channel;
use tonic::{Code, Status};

/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct ControllerClient {
    /// The configured voters, then any controller a NOT_CONTROLLER hint named (voters added
    /// at run time). A std `RwLock`: held to copy a channel out or add one, never across an
    /// `.await`.
    voters: Arc<RwLock<Vec<(u64, Channel)>>>,
    /// The address each voter's channel goes to.
    addresses: Arc<RwLock<BTreeMap<u64, String>>>,
    current: Arc<AtomicUsize>,
    /// TLS on the controller listener.
    tls: Option<Arc<odradek_quorum::ControlTls>>,
}

fn channel(
    addr: &str,
    tls: Option<&odradek_quorum::ControlTls>,
) -> Result<Channel, tonic::transport::Error> {
    // Calls bound their own attempts; AddRaftVoter waits up to 30 s for a catch-up.
    Ok(odradek_quorum::endpoint(addr, tls, Duration::from_secs(60))?.connect_lazy())
}

impl ControllerClient {
    /// The channel of voter `i` (modulo how many are known).
    fn channel_at(&self, i: usize) -> Channel {
        let voters = self.voters.read().unwrap_or_else(|p| p.into_inner());
        voters[i % voters.len()].1.clone()
    }

    /// Where voter `id` is in the list; a voter the hint names with its address is added.
    fn position_of(&self, id: u64, status: &Status) -> Option<usize> {
        let mut voters = self.voters.write().unwrap_or_else(|p| p.into_inner());
        let addr = status
            .metadata()
            .get(odradek_controller::service::LEADER_ADDRESS_KEY)
            .and_then(|a| a.to_str().ok())
            .map(str::to_string);
        let known = voters.iter().position(|(v, _)| *v == id);
        let Some(addr) = addr else { return known };
        // A hint names the controller's address as the quorum knows it now: a new controller,
        // or one that moved, gets a channel to that address.
        let moved = known.is_some()
            && self
                .addresses
                .read()
                .ok()
                .and_then(|a| a.get(&id).cloned())
                .as_deref()
                != Some(addr.as_str());
        if known.is_some() && !moved {
            return known;
        }
        let c = channel(&addr, self.tls.as_deref()).ok()?;
        tracing::info!(controller = id, %addr, "controller address from a NOT_CONTROLLER hint");
        if let Ok(mut a) = self.addresses.write() {
            a.insert(id, addr);
        }
        match known {
            Some(i) => {
                voters[i].1 = c;
                Some(i)
            }
            None => {
                voters.push((id, c));
                Some(voters.len() - 1)
            }
        }
    }

    /// Channels to every voter (connected lazily).
    pub fn new(
        voters: &BTreeMap<u64, String>,
        tls: Option<odradek_quorum::ControlTls>,
    ) -> Result<Self, String> {
        let mut out = Vec::new();
        for (id, addr) in voters {
            let channel = channel(addr, tls.as_ref())
                .map_err(|e| format!("voter {id} address {addr}: {e}"))?;
            out.push((*id, channel));
        }
        Ok(Self {
            voters: Arc::new(RwLock::new(out)),
            addresses: Arc::new(RwLock::new(voters.clone())),
            current: Arc::new(AtomicUsize::new(0)),
            tls: tls.map(Arc::new),
        })
    }

    /// A client of the voter believed to be active.
    pub fn active(&self) -> ControllerServiceClient<Channel> {
        ControllerServiceClient::new(self.channel_at(self.current.load(Ordering::Relaxed)))
            .max_decoding_message_size(odradek_quorum::MAX_MESSAGE_BYTES)
    }

    /// A client of any voter, rotating: for reads every voter serves (FetchMetadata).
    pub fn any(&self, attempt: usize) -> ControllerServiceClient<Channel> {
        ControllerServiceClient::new(self.channel_at(attempt))
            .max_decoding_message_size(odradek_quorum::MAX_MESSAGE_BYTES)
    }

    fn follow(&self, status: &Status) {
        let hinted = status
            .metadata()
            .get(LEADER_ID_KEY)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .and_then(|id| self.position_of(id, status));
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
