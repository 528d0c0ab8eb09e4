//! The in-process fan-out: the feed hands every LEAD_INTEL message to the hub, and the hub
//! puts it in the bounded send queue of each connection of that message's tenant.
//!
//! The hub never waits on a connection. A queue that is full means its client is not keeping
//! up: the hub evicts it (the connection then closes with the slow-client code) and goes on,
//! so one slow client never delays the feed or anybody else, and a connection never holds
//! more than its queue's worth of messages.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::warn;

use crate::feed::FeedItem;

/// One connection as the hub sees it.
#[derive(Debug)]
struct Member {
    id: u64,
    queue: mpsc::Sender<Arc<FeedItem>>,
    evicted: CancellationToken,
}

#[derive(Debug, Default)]
struct Registry {
    tenants: HashMap<String, Vec<Member>>,
    /// Stream sequence of the last message fanned out.
    last_seq: u64,
}

/// Counters the hub keeps.
#[derive(Debug, Default)]
pub struct HubCounters {
    /// Connections closed because their queue filled up.
    pub slow_clients: AtomicU64,
    /// Connections registered now.
    pub connections: AtomicU64,
}

/// The fan-out.
#[derive(Debug, Default)]
pub struct Hub {
    registry: Mutex<Registry>,
    next_id: AtomicU64,
    /// What happened so far.
    pub counters: HubCounters,
}

/// A connection's membership; leaving the hub happens on drop.
#[derive(Debug)]
pub struct Membership {
    hub: Arc<Hub>,
    tenant: String,
    id: u64,
    /// Every message of the tenant with a sequence above this one goes into the queue.
    pub after_seq: u64,
    /// Fires when the hub evicted this connection for being too slow.
    pub evicted: CancellationToken,
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.hub.leave(&self.tenant, self.id);
    }
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        // The registry stays consistent even if a holder panicked: every change is one push
        // or one retain.
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a connection of `tenant` whose messages go to `queue`.
    pub fn join(self: &Arc<Self>, tenant: &str, queue: mpsc::Sender<Arc<FeedItem>>) -> Membership {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let evicted = CancellationToken::new();
        let mut registry = self.lock();
        let after_seq = registry.last_seq;
        registry
            .tenants
            .entry(tenant.to_owned())
            .or_default()
            .push(Member {
                id,
                queue,
                evicted: evicted.clone(),
            });
        drop(registry);
        self.counters.connections.fetch_add(1, Ordering::Relaxed);
        Membership {
            hub: Arc::clone(self),
            tenant: tenant.to_owned(),
            id,
            after_seq,
            evicted,
        }
    }

    fn leave(&self, tenant: &str, id: u64) {
        let mut registry = self.lock();
        let mut left = false;
        if let Some(members) = registry.tenants.get_mut(tenant) {
            let before = members.len();
            members.retain(|m| m.id != id);
            left = members.len() < before;
            if members.is_empty() {
                registry.tenants.remove(tenant);
            }
        }
        drop(registry);
        if left {
            self.counters.connections.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Stream sequence of the last message fanned out.
    pub fn last_seq(&self) -> u64 {
        self.lock().last_seq
    }

    /// Moves the last fanned-out position to `seq` if it is behind: where a fresh feed starts.
    pub fn advance_to(&self, seq: u64) {
        let mut registry = self.lock();
        registry.last_seq = registry.last_seq.max(seq);
    }

    /// Hands `item` to every connection of its tenant; evicts those whose queue is full.
    pub fn publish(&self, item: Arc<FeedItem>) {
        let mut registry = self.lock();
        registry.last_seq = item.seq;
        let Some(members) = registry.tenants.get_mut(item.tenant.as_str()) else {
            return;
        };
        let (mut evicted, mut gone) = (0u64, 0u64);
        members.retain(|member| match member.queue.try_send(Arc::clone(&item)) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                member.evicted.cancel();
                evicted += 1;
                false
            }
            // The connection is gone; its membership drop will find nothing left to remove.
            Err(mpsc::error::TrySendError::Closed(_)) => {
                gone += 1;
                false
            }
        });
        if members.is_empty() {
            registry.tenants.remove(item.tenant.as_str());
        }
        drop(registry);
        if evicted + gone > 0 {
            self.counters
                .connections
                .fetch_sub(evicted + gone, Ordering::Relaxed);
        }
        if evicted > 0 {
            self.counters
                .slow_clients
                .fetch_add(evicted, Ordering::Relaxed);
            metrics::counter!("leadbus_ws_slow_clients_total").increment(evicted);
            warn!(
                tenant = %item.tenant,
                seq = item.seq,
                evicted,
                "websocket clients too slow for the feed; closing them"
            );
        }
    }
}
