//! Client quotas applied to requests: produce bytes are counted before the append, fetch
//! bytes once the response is built (a throttled fetch answers no data and is not counted),
//! handler time for the request percentage; a client over a quota gets `throttle_time_ms` in
//! its Produce or Fetch response and a muted connection (see [`crate::quotas`]).

use std::time::Duration;

use kafka_protocol::messages::{FetchResponse, ProduceRequest, ResponseKind};
use odradek_frontend::{Handled, RequestContext};

use super::Broker;
use crate::quotas::QuotaKind;

impl Broker {
    /// Records `value` of `kind` for the request's client; the throttle in milliseconds.
    pub(crate) fn record_quota(&self, ctx: &RequestContext, kind: QuotaKind, value: f64) -> u32 {
        let image = self.image();
        self.quotas.record(
            &image.client_quotas,
            kind,
            &ctx.session.principal.name,
            ctx.client_id.as_deref().unwrap_or(""),
            value,
            self.clock.now_ms(),
        )
    }
}

/// The bytes a Produce request carries (its record sets).
pub(super) fn produce_bytes(r: &ProduceRequest) -> usize {
    r.topic_data
        .iter()
        .flat_map(|t| &t.partition_data)
        .map(|p| p.records.as_ref().map_or(0, |b| b.len()))
        .sum()
}

/// A consumer's fetch response after its byte quota: unchanged within the quota; else with
/// no records (the usage taken back) and the wait.
pub(super) fn fetch(
    broker: &Broker,
    ctx: &RequestContext,
    mut r: FetchResponse,
) -> (FetchResponse, u32) {
    if broker.image().client_quotas.entities.is_empty() {
        return (r, 0);
    }
    let bytes: usize = r
        .responses
        .iter()
        .flat_map(|t| &t.partitions)
        .map(|p| p.records.as_ref().map_or(0, |b| b.len()))
        .sum();
    let ms = broker.record_quota(ctx, QuotaKind::Fetch, bytes as f64);
    if ms > 0 {
        let image = broker.image();
        broker.quotas.unrecord(
            &image.client_quotas,
            QuotaKind::Fetch,
            &ctx.session.principal.name,
            ctx.client_id.as_deref().unwrap_or(""),
            bytes as f64,
            broker.clock.now_ms(),
        );
        for p in r.responses.iter_mut().flat_map(|t| t.partitions.iter_mut()) {
            p.records = Some(bytes::Bytes::new());
            p.aborted_transactions = Some(Vec::new());
        }
        r.throttle_time_ms = ms as i32;
    }
    (r, ms)
}

/// Sets `throttle_time_ms` of a Produce or Fetch response (the largest of what is there and
/// `ms`).
fn set_throttle(r: &mut ResponseKind, ms: u32) {
    let ms = ms.min(i32::MAX as u32) as i32;
    match r {
        ResponseKind::Produce(p) => p.throttle_time_ms = p.throttle_time_ms.max(ms),
        ResponseKind::Fetch(f) => f.throttle_time_ms = f.throttle_time_ms.max(ms),
        _ => {}
    }
}

/// The largest fetch a consumer over a byte quota may ask for: quota x (samples - 1) x the
/// sample length (Kafka's `getMaxValueInQuotaWindow`); `None` without a quota.
pub(super) fn fetch_cap(broker: &Broker, ctx: &RequestContext) -> Option<i32> {
    let image = broker.image();
    if image.client_quotas.entities.is_empty() {
        return None;
    }
    let (quota, _) = crate::quotas::quota_for(
        &image.client_quotas,
        QuotaKind::Fetch,
        &ctx.session.principal.name,
        ctx.client_id.as_deref().unwrap_or(""),
    )?;
    let w = broker.config.quota_window;
    let max = quota * (w.samples.saturating_sub(1).max(1) as f64) * (w.sample_ms as f64 / 1000.0);
    Some(max.clamp(1.0, f64::from(i32::MAX)) as i32)
}

/// A handler future, timed: how long its polls ran (the request-thread time Kafka's request
/// quota counts), not how long it waited.
pub(super) struct PollTimed<F> {
    inner: std::pin::Pin<Box<F>>,
    busy: Duration,
}

impl<F: std::future::Future> PollTimed<F> {
    pub(super) fn new(inner: F) -> Self {
        Self {
            inner: Box::pin(inner),
            busy: Duration::ZERO,
        }
    }
}

impl<F: std::future::Future> std::future::Future for PollTimed<F> {
    type Output = (F::Output, Duration);

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let start = std::time::Instant::now();
        let r = self.inner.as_mut().poll(cx);
        self.busy += start.elapsed();
        r.map(|out| (out, self.busy))
    }
}

/// `handled`, telling the client to wait `ms` and muting its connection that long (an
/// already muted answer keeps the longer wait).
pub(super) fn throttled(handled: Handled, ms: u32) -> Handled {
    if ms == 0 {
        return handled;
    }
    if let Handled::Muting(inner, d) = handled {
        let longer = d.max(Duration::from_millis(u64::from(ms)));
        let inner = throttled(*inner, ms);
        return match inner {
            Handled::Muting(inner, _) => Handled::Muting(inner, longer),
            other => Handled::Muting(Box::new(other), longer),
        };
    }
    let handled = match handled {
        Handled::Done(Some(mut r)) => {
            set_throttle(&mut r, ms);
            Handled::Done(Some(r))
        }
        Handled::Files(mut r, files) => {
            set_throttle(&mut r, ms);
            Handled::Files(r, files)
        }
        Handled::Pending(fut) => Handled::Pending(Box::pin(async move {
            let mut r = fut.await?;
            set_throttle(&mut r, ms);
            Some(r)
        })),
        other => other,
    };
    Handled::Muting(Box::new(handled), Duration::from_millis(u64::from(ms)))
}
