//! A short-lived cache of application ids by the reference a publisher puts in the path (id or uid), so
//! publishing does not read the application from the database for every message.
//!
//! Entries live one second. Changing or deleting an application in this process empties the cache at once;
//! another process sharing the database sees the change within that second. A message published in that
//! window to an application deleted elsewhere is refused by the store (the application is gone: 404), so the
//! only stale answer possible is a uid that was renamed less than a second ago still finding its application.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hookrelay_core::AppId;

/// How long an entry is trusted.
const TTL: Duration = Duration::from_secs(1);
/// Most entries kept; past this the cache starts over, which bounds its memory whatever the paths used.
const MAX_ENTRIES: usize = 10_000;

#[derive(Default)]
pub struct AppIds {
    entries: Mutex<HashMap<String, (AppId, Instant)>>,
}

impl AppIds {
    /// The id of the application `reference` named less than [`TTL`] ago, if remembered.
    pub fn get(&self, reference: &str) -> Option<AppId> {
        let entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let (id, since) = entries.get(reference)?;
        (since.elapsed() < TTL).then(|| id.clone())
    }

    /// Remembers that `reference` names the application `id`.
    pub fn put(&self, reference: &str, id: &AppId) {
        let mut entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(reference) {
            entries.clear();
        }
        entries.insert(reference.to_owned(), (id.clone(), Instant::now()));
    }

    /// Forgets everything: an application changed or was deleted.
    pub fn forget_all(&self) {
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_until_forgotten_or_expired() {
        let cache = AppIds::default();
        let id = AppId::at(1_700_000_000_000);
        assert_eq!(cache.get("acme"), None);
        cache.put("acme", &id);
        assert_eq!(cache.get("acme"), Some(id.clone()));
        assert_eq!(cache.get("other"), None);
        cache.forget_all();
        assert_eq!(cache.get("acme"), None);

        let stale = AppIds::default();
        stale.entries.lock().unwrap().insert("acme".into(), (id, Instant::now() - TTL));
        assert_eq!(stale.get("acme"), None, "an entry older than the TTL is not trusted");
    }

    #[test]
    fn stays_bounded() {
        let cache = AppIds::default();
        let id = AppId::at(1_700_000_000_000);
        for n in 0..MAX_ENTRIES + 10 {
            cache.put(&format!("app-{n}"), &id);
        }
        assert!(cache.entries.lock().unwrap().len() <= MAX_ENTRIES);
        assert_eq!(cache.get(&format!("app-{}", MAX_ENTRIES + 9)), Some(id));
    }
}
