//! Group configs: Kafka's per-group overrides of the broker's group settings
//! (`consumer.session.timeout.ms`, `share.heartbeat.interval.ms`, ...), which the broker
//! takes from the metadata and hands to each `Groups`.

use std::collections::BTreeMap;

use super::Groups;

impl Groups {
    /// The group configs of every group that has some (group id -> name -> value), replacing
    /// those known before; they apply from the next heartbeat on.
    pub fn set_group_configs(&mut self, configs: BTreeMap<String, BTreeMap<String, String>>) {
        self.group_configs = configs;
    }

    /// `group`'s value of the int config `name`, else `default` (the broker's setting).
    pub(crate) fn group_int(&self, group: &str, name: &str, default: i32) -> i32 {
        self.group_configs
            .get(group)
            .and_then(|c| c.get(name))
            .and_then(|v| v.trim().parse::<i32>().ok())
            .filter(|v| *v > 0)
            .unwrap_or(default)
    }
}
