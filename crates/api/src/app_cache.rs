//! A short-lived cache of application ids by the reference a publisher puts in the path (id or uid), so
//! publishing does not read the application from the database for every message.
//!
//! Entries live one second. Changing or deleting an application in this process empties the cache at once;
//! another process sharing the database sees the change within that second. A message published in that
//! window to an application deleted elsewhere is refused by the store (the application is gone: 404), so the
//! only stale answer possible is a uid that was renamed less than a second ago still finding its application.

use std::time::Duration;

use hookrelay_core::AppId;

use crate::ttl_cache::TtlCache;

/// How long an entry is trusted.
const TTL: Duration = Duration::from_secs(1);
/// Most entries kept, which bounds the cache's memory whatever the paths used.
const MAX_ENTRIES: usize = 10_000;

pub struct AppIds(TtlCache<String, AppId>);

impl Default for AppIds {
    fn default() -> Self {
        Self(TtlCache::new(TTL, MAX_ENTRIES))
    }
}

impl AppIds {
    /// The id of the application `reference` named less than [`TTL`] ago, if remembered.
    pub fn get(&self, reference: &str) -> Option<AppId> {
        self.0.get(reference)
    }

    /// Remembers that `reference` names the application `id`.
    pub fn put(&self, reference: &str, id: &AppId) {
        self.0.put(reference.to_owned(), id.clone());
    }

    /// Forgets everything: an application changed or was deleted.
    pub fn forget_all(&self) {
        self.0.forget_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_until_forgotten() {
        let cache = AppIds::default();
        let id = AppId::at(1_700_000_000_000);
        assert_eq!(cache.get("acme"), None);
        cache.put("acme", &id);
        assert_eq!(cache.get("acme"), Some(id.clone()));
        assert_eq!(cache.get("other"), None);
        cache.forget_all();
        assert_eq!(cache.get("acme"), None);
    }
}
