//! The faults a run injects from its seed, and their end.

use super::{Hazard, World, CONTROLLERS};
use crate::message::Node;

impl World {
    pub(super) fn inject_faults(&mut self) {
        let now = self.now;
        let due: Vec<i32> = self
            .restarts
            .iter()
            .filter(|(at, _)| *at <= now)
            .map(|(_, id)| *id)
            .collect();
        self.restarts.retain(|(at, _)| *at > now);
        for id in due {
            self.restart(id);
        }
        if self.heal_at.is_some_and(|at| at <= now) {
            self.heal_at = None;
            self.net.heal();
            self.event("network healed".into());
        }
        if let Some((at, id)) = self.controller_back_at {
            if at <= now {
                self.controller_back_at = None;
                self.restart_controller(id);
            }
        }
        let rate = self.config.fault_rate;
        // At most `max_brokers_down` at a time: with one, RF 3 and min.insync.replicas 2 the
        // cluster keeps accepting acks=all writes, so faults meet traffic; with two, ISRs
        // shrink to one, writes are refused (NOT_ENOUGH_REPLICAS) and a partition whose last
        // ISR member is down waits for it (no unclean election).
        if self.rng.chance(rate / 2.0) && self.restarts.len() < self.config.max_brokers_down {
            let id = *self.rng.pick(&self.broker_ids());
            if let Some(b) = self.brokers.iter_mut().find(|b| b.id == id && b.up) {
                b.stop();
                self.stats.clean_restarts += 1;
                self.event(format!("broker {id} stopped cleanly (SIGTERM)"));
                let back = now + self.rng.between(200, 4000);
                self.restarts.push((back, id));
            }
        }
        if self.rng.chance(rate) && self.restarts.len() < self.config.max_brokers_down {
            let id = *self.rng.pick(&self.broker_ids());
            let power_loss = (self.config.fsync
                || self.config.hazard == Some(Hazard::PowerLossWithoutFsync))
                && self.rng.chance(0.5);
            self.crash(id, power_loss);
            let back = now + self.rng.between(200, 6000);
            self.restarts.push((back, id));
        }
        if self.rng.chance(rate) && !self.net.has_cuts() {
            let id = *self.rng.pick(&self.broker_ids());
            let others: Vec<Node> = self
                .broker_ids()
                .into_iter()
                .filter(|o| *o != id)
                .map(Node::Broker)
                .chain(CONTROLLERS.iter().map(|c| Node::Controller(*c)))
                .collect();
            let cut: Vec<Node> = others
                .into_iter()
                .filter(|_| self.rng.chance(0.6))
                .collect();
            for n in &cut {
                self.net.cut(Node::Broker(id), *n);
            }
            self.heal_at = Some(now + self.rng.between(500, 8000));
            self.stats.cuts += 1;
            self.event(format!("network: broker {id} cut from {cut:?}"));
        }
        let paused = self.brokers.iter().any(|b| b.paused_until_ms > now);
        if self.rng.chance(rate) && !paused {
            let id = *self.rng.pick(&self.broker_ids());
            let until = now + self.rng.between(100, 2500);
            if let Some(b) = self.brokers.iter_mut().find(|b| b.id == id && b.up) {
                b.paused_until_ms = until;
                self.stats.pauses += 1;
                self.event(format!("broker {id} paused (SIGSTOP) until {until} ms"));
            }
        }
        if self.rng.chance(rate / 2.0) && self.controller_back_at.is_none() {
            // Usually the active controller, so the quorum fails over.
            let id = match self.active {
                Some(id) if self.rng.chance(0.7) => id,
                _ => *self.rng.pick(&CONTROLLERS),
            };
            if let Some(c) = self.controllers.iter_mut().find(|c| c.voter.id == id) {
                c.crash();
                self.controller_back_at = Some((now + self.rng.between(100, 3000), id));
                self.stats.controller_failovers += 1;
                self.event(format!("controller {id} crashed (kill -9)"));
            }
        }
        if self.rng.chance(rate / 2.0) && !self.net.has_cuts() {
            // A controller cut off from the other voters (and maybe from brokers).
            let id = *self.rng.pick(&CONTROLLERS);
            for other in CONTROLLERS.iter().filter(|o| **o != id) {
                self.net.cut(Node::Controller(id), Node::Controller(*other));
            }
            let brokers_too = self.rng.chance(0.5);
            if brokers_too {
                for b in self.broker_ids() {
                    self.net.cut(Node::Controller(id), Node::Broker(b));
                }
            }
            self.heal_at = Some(now + self.rng.between(500, 6000));
            self.stats.cuts += 1;
            self.event(format!(
                "network: controller {id} cut from the other controllers{}",
                if brokers_too { " and the brokers" } else { "" }
            ));
        }
        if self.rng.chance(rate) && !self.consumers.is_empty() {
            let i = self.rng.below(self.consumers.len() as u64) as usize;
            self.consumers[i].restart();
            self.stats.consumer_restarts += 1;
            self.event(format!(
                "consumer {i} restarted (resumes from its committed offset)"
            ));
        }
        if self.rng.chance(rate / 4.0) && !self.copiers.is_empty() {
            // Mid-transaction or not: the next session fences this one.
            let i = self.rng.below(self.copiers.len() as u64) as usize;
            self.copiers[i].restart();
            self.stats.copier_restarts += 1;
            self.event(format!(
                "copier {i} restarted (a new session fences the old one)"
            ));
        }
        if self.rng.chance(rate) {
            let id = *self.rng.pick(&self.broker_ids());
            let skew = self.rng.between(-300, 300);
            if let Some(b) = self.brokers.iter_mut().find(|b| b.id == id) {
                b.clock_skew_ms = skew;
            }
        }
    }

    fn restart_controller(&mut self, id: u64) {
        let now = self.now;
        if let Some(c) = self.controllers.iter_mut().find(|c| c.voter.id == id) {
            c.restart(now);
            self.event(format!("controller {id} restarted"));
        }
    }

    /// Halfway through the faults, if no partition has changed leader yet, the leader of the
    /// first partition is killed for longer than a broker session: the run then exercises a
    /// failover whatever the seed drew.
    pub(super) fn ensure_a_leader_change(&mut self) {
        if self.checker.leader_changes > 0 || !self.restarts.is_empty() || self.forced_failover {
            return;
        }
        let Some(tp) = self.producers.first().map(|p| p.partition()) else {
            return;
        };
        let leader = self.brokers.iter().find(|b| {
            b.up && b
                .replicas
                .get(&tp)
                .is_some_and(|r| r.partition.role() == odradek_replication::Role::Leader)
        });
        if let Some(id) = leader.map(|b| b.id) {
            self.forced_failover = true;
            self.event(format!(
                "no leader change so far: killing broker {id}, the leader"
            ));
            self.crash(id, false);
            self.restarts.push((self.now + 5000, id));
        }
    }

    fn broker_ids(&self) -> Vec<i32> {
        self.brokers.iter().map(|b| b.id).collect()
    }

    fn crash(&mut self, id: i32, power_loss: bool) {
        let Some(i) = self.brokers.iter().position(|b| b.id == id && b.up) else {
            return;
        };
        let torn = self.brokers[i].crash(power_loss, &mut self.rng);
        self.stats.crashes += 1;
        if power_loss {
            self.stats.power_losses += 1;
        }
        let kind = if power_loss { "power loss" } else { "kill -9" };
        self.event(format!("broker {id} crashed ({kind})"));
        for t in torn {
            self.event(format!("  broker {id}: {t}"));
        }
    }

    fn restart(&mut self, id: i32) {
        if let Some(b) = self.brokers.iter_mut().find(|b| b.id == id && !b.up) {
            b.start(self.now, &mut self.rng);
            self.event(format!("broker {id} restarted"));
        }
    }

    /// The faults end: every link heals, every node runs again.
    pub(super) fn end_faults(&mut self) {
        self.net.heal();
        self.heal_at = None;
        if let Some((_, id)) = self.controller_back_at.take() {
            self.restart_controller(id);
        }
        for (_, id) in std::mem::take(&mut self.restarts) {
            self.restart(id);
        }
        for b in &mut self.brokers {
            b.paused_until_ms = 0;
            b.clock_skew_ms = 0;
        }
        self.event("faults end: network healed, every node running".into());
    }
}
