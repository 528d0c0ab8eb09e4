//! Per-lead serialisation inside one process: events of one lead take the same stripe, so
//! they never race, while different leads run in parallel.

use leadbus_shared::{LeadId, TenantId};
use tokio::sync::{Mutex, MutexGuard};

/// Striped locks keyed by `(tenant, lead)`.
#[derive(Debug)]
pub struct LeadLocks {
    stripes: Vec<Mutex<()>>,
}

impl LeadLocks {
    /// `stripes` locks; a few times the work in flight keeps false sharing rare.
    pub fn new(stripes: usize) -> Self {
        LeadLocks {
            stripes: (0..stripes.max(1)).map(|_| Mutex::new(())).collect(),
        }
    }

    /// Waits for the lead's stripe.
    pub async fn lock(&self, tenant: &TenantId, lead: &LeadId) -> MutexGuard<'_, ()> {
        let mut key = Vec::with_capacity(tenant.as_str().len() + lead.as_str().len() + 1);
        key.extend_from_slice(tenant.as_str().as_bytes());
        key.push(b'.');
        key.extend_from_slice(lead.as_str().as_bytes());
        let hash = xxhash_rust::xxh3::xxh3_64(&key);
        let index = (hash % self.stripes.len() as u64) as usize;
        self.stripes[index].lock().await
    }
}
