//! Lead profiles in a JetStream key-value bucket: they survive restarts, and every write is a
//! compare-and-set on the entry's revision, so two writers of one lead never lose an update.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use bytes::Bytes;
use leadbus_shared::{LeadEvent, LeadId, TenantId};
use moka::future::Cache;
use tracing::debug;

use crate::profile::LeadProfile;

/// Bucket holding one entry per lead, keyed `{tenant}.{lead}`.
pub const PROFILE_BUCKET: &str = "LEAD_PROFILES";

const BUCKET_STREAM: &str = "KV_LEAD_PROFILES";
const BUCKET_DEFINITION: &str = include_str!("../../../../nats/streams/kv_lead_profiles.json");

/// Attempts at a compare-and-set before giving up (each attempt re-reads the entry).
const CAS_ATTEMPTS: usize = 16;

/// A profile read or write failed.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// The bucket could not be created or opened.
    #[error("profile bucket unavailable: {0}")]
    Bucket(String),
    /// Reading the entry failed.
    #[error("profile read failed: {0}")]
    Read(String),
    /// Writing the entry failed.
    #[error("profile write failed: {0}")]
    Write(String),
    /// The stored entry is not a profile.
    #[error("stored profile is unreadable: {0}")]
    Corrupt(String),
    /// Other writers kept winning the compare-and-set.
    #[error("profile kept changing under us after {CAS_ATTEMPTS} attempts")]
    Contended,
}

/// Result of merging an event into its lead's profile.
#[derive(Debug)]
pub struct Merged {
    /// The profile after the merge.
    pub profile: LeadProfile,
    /// False when the event had been merged before (a redelivery).
    pub applied: bool,
}

/// The profile store: the bucket, with the profiles this process last read or wrote kept in
/// front of it. A kept copy carries the bucket revision it was read or written at, so a write
/// based on it is a compare-and-set like any other: if another writer (a second instance, a
/// `rebuild`) changed the entry since, the write fails, the copy is dropped and the entry is
/// read again. Keeping copies saves the read on every event of a known lead, never a check.
#[derive(Debug, Clone)]
pub struct ProfileStore {
    kv: kv::Store,
    kept: Cache<String, Arc<(LeadProfile, u64)>>,
}

impl ProfileStore {
    /// Opens the bucket, creating its stream from `nats/streams/kv_lead_profiles.json` on
    /// first use. The stream is created directly rather than through the client's bucket
    /// helper, which reads account info in a shape nats-server 2.9 does not send.
    pub async fn open(js: &jetstream::Context, kept: u64) -> Result<Self, ProfileError> {
        if js.get_stream(BUCKET_STREAM).await.is_err() {
            let config: jetstream::stream::Config = serde_json::from_str(BUCKET_DEFINITION)
                .map_err(|e| ProfileError::Bucket(format!("bad bucket definition: {e}")))?;
            js.get_or_create_stream(config)
                .await
                .map_err(|e| ProfileError::Bucket(e.to_string()))?;
        }
        let kv = js
            .get_key_value(PROFILE_BUCKET)
            .await
            .map_err(|e| ProfileError::Bucket(e.to_string()))?;
        Ok(ProfileStore {
            kv,
            kept: Cache::new(kept),
        })
    }

    fn key(tenant: &TenantId, lead: &LeadId) -> String {
        format!("{tenant}.{lead}")
    }

    /// The profile of a lead and its entry revision (0 when there is none): the kept copy
    /// when there is one, else the stored entry.
    pub async fn get(
        &self,
        tenant: &TenantId,
        lead: &LeadId,
    ) -> Result<(LeadProfile, u64), ProfileError> {
        let key = Self::key(tenant, lead);
        if let Some(kept) = self.kept.get(&key).await {
            return Ok(kept.as_ref().clone());
        }
        self.read(&key, tenant, lead).await
    }

    /// The stored entry, read from the bucket.
    async fn read(
        &self,
        key: &str,
        tenant: &TenantId,
        lead: &LeadId,
    ) -> Result<(LeadProfile, u64), ProfileError> {
        let entry = self
            .kv
            .entry(key)
            .await
            .map_err(|e| ProfileError::Read(e.to_string()))?;
        match entry {
            Some(e) if e.operation == kv::Operation::Put => {
                let profile = serde_json::from_slice(&e.value)
                    .map_err(|err| ProfileError::Corrupt(err.to_string()))?;
                Ok((profile, e.revision))
            }
            Some(e) => Ok((LeadProfile::new(tenant.clone(), lead.clone()), e.revision)),
            None => Ok((LeadProfile::new(tenant.clone(), lead.clone()), 0)),
        }
    }

    /// Writes a whole profile over what is stored (used by `rebuild`).
    pub async fn put(&self, profile: &LeadProfile) -> Result<u64, ProfileError> {
        let value = serde_json::to_vec(profile).map_err(|e| ProfileError::Write(e.to_string()))?;
        let key = Self::key(&profile.tenant_id, &profile.lead_id);
        self.kept.invalidate(&key).await;
        self.kv
            .put(key, value.into())
            .await
            .map_err(|e| ProfileError::Write(e.to_string()))
    }

    /// Merges `event` into its lead's profile with compare-and-set, retrying on conflict.
    pub async fn merge(&self, event: &LeadEvent) -> Result<Merged, ProfileError> {
        let key = Self::key(&event.tenant_id, &event.lead_id);
        let (tenant, lead) = (&event.tenant_id, &event.lead_id);
        for attempt in 0..CAS_ATTEMPTS {
            // The kept copy first; after a failed compare-and-set, only the bucket.
            let (mut profile, revision) = match attempt {
                0 => self.get(tenant, lead).await?,
                _ => self.read(&key, tenant, lead).await?,
            };
            if !profile.apply(event) {
                return Ok(Merged {
                    profile,
                    applied: false,
                });
            }
            let value = Bytes::from(
                serde_json::to_vec(&profile).map_err(|e| ProfileError::Write(e.to_string()))?,
            );
            let written = if revision == 0 {
                self.kv.create(&key, value).await.map_err(|e| {
                    (
                        e.kind() == kv::CreateErrorKind::AlreadyExists,
                        e.to_string(),
                    )
                })
            } else {
                self.kv.update(&key, value, revision).await.map_err(|e| {
                    (
                        e.kind() == kv::UpdateErrorKind::WrongLastRevision,
                        e.to_string(),
                    )
                })
            };
            match written {
                Ok(new_revision) => {
                    self.kept
                        .insert(key, Arc::new((profile.clone(), new_revision)))
                        .await;
                    return Ok(Merged {
                        profile,
                        applied: true,
                    });
                }
                Err((true, _)) => {
                    debug!(%key, attempt, "profile changed concurrently; retrying");
                    self.kept.invalidate(&key).await;
                    if attempt > 0 {
                        tokio::time::sleep(Duration::from_millis(1 << attempt.min(6))).await;
                    }
                }
                Err((false, error)) => {
                    // The write may have been stored after all: trust only the bucket now.
                    self.kept.invalidate(&key).await;
                    return Err(ProfileError::Write(error));
                }
            }
        }
        Err(ProfileError::Contended)
    }
}
