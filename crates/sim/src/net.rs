//! The simulated network: every message is delivered after a random delay, may be dropped or
//! duplicated, and never crosses a cut link. Between two nodes messages keep their order, as
//! on a TCP connection (a duplicate arrives after its original, as a resent request would);
//! messages of different pairs reorder freely. A message to a node that restarted since it was
//! sent is lost, as its connection was.

use std::collections::{BTreeMap, BTreeSet};

use crate::message::{Message, Node};
use crate::rng::SimRng;

/// How unreliable the network is.
#[derive(Debug, Clone, Copy)]
pub struct NetFaults {
    /// Probability that a message is lost.
    pub drop: f64,
    /// Probability that a message is delivered twice.
    pub duplicate: f64,
    /// Largest delivery delay, in ms (the smallest is 1).
    pub max_delay_ms: i64,
}

/// A message on its way.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// Sender.
    pub from: Node,
    /// Receiver.
    pub to: Node,
    /// The receiver's incarnation when it was sent (a restart loses it).
    pub to_incarnation: u64,
    /// Payload.
    pub message: Message,
    /// Its place in the send order (set by the network): a deferred message keeps it.
    pub seq: u64,
}

/// Messages in flight, by delivery time.
#[derive(Debug, Default)]
pub struct Network {
    in_flight: BTreeMap<(i64, u64), Envelope>,
    seq: u64,
    /// The latest delivery time scheduled per (from, to): later messages come no earlier.
    last_delivery: BTreeMap<(Node, Node), i64>,
    cut: BTreeSet<(Node, Node)>,
    /// Messages lost to faults or cuts.
    pub dropped: u64,
    /// Messages delivered twice.
    pub duplicated: u64,
    /// Messages sent.
    pub sent: u64,
}

impl Network {
    /// Sends `envelope` at `now`.
    pub fn send(&mut self, now: i64, faults: &NetFaults, rng: &mut SimRng, envelope: Envelope) {
        self.sent += 1;
        if self.is_cut(envelope.from, envelope.to) || rng.chance(faults.drop) {
            self.dropped += 1;
            return;
        }
        let copies = if rng.chance(faults.duplicate) {
            self.duplicated += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            let link = (envelope.from, envelope.to);
            let earliest = self.last_delivery.get(&link).copied().unwrap_or(0);
            let at = (now + rng.between(1, faults.max_delay_ms.max(1))).max(earliest);
            self.last_delivery.insert(link, at);
            self.seq += 1;
            let mut copy = envelope.clone();
            copy.seq = self.seq;
            self.in_flight.insert((at, self.seq), copy);
        }
    }

    /// The next message due at or before `now`, if any.
    pub fn next_due(&mut self, now: i64) -> Option<Envelope> {
        let (&key, _) = self.in_flight.iter().next()?;
        if key.0 > now {
            return None;
        }
        self.in_flight.remove(&key)
    }

    /// Puts a message back until `at` (its receiver is paused). It keeps its place in the send
    /// order, and later messages on its link come no earlier, so the link stays in order.
    pub fn defer(&mut self, at: i64, envelope: Envelope) {
        let link = (envelope.from, envelope.to);
        let last = self.last_delivery.entry(link).or_insert(at);
        *last = (*last).max(at);
        self.in_flight.insert((at, envelope.seq), envelope);
    }

    /// Cuts the link between `a` and `b` (both ways).
    pub fn cut(&mut self, a: Node, b: Node) {
        self.cut.insert((a.min(b), a.max(b)));
    }

    /// Heals every cut link.
    pub fn heal(&mut self) {
        self.cut.clear();
    }

    /// Whether `a` and `b` are cut off from each other.
    pub fn is_cut(&self, a: Node, b: Node) -> bool {
        self.cut.contains(&(a.min(b), a.max(b)))
    }

    /// Whether any link is cut.
    pub fn has_cuts(&self) -> bool {
        !self.cut.is_empty()
    }
}
