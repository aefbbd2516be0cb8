//! A small in-process cache whose entries are trusted for a fixed time and whose size is bounded, for lookups
//! the request path would otherwise make in the database every time (application ids, API tokens).

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct TtlCache<K, V> {
    ttl: Duration,
    max_entries: usize,
    entries: Mutex<HashMap<K, (V, Instant)>>,
}

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    pub fn new(ttl: Duration, max_entries: usize) -> Self {
        Self { ttl, max_entries, entries: Mutex::default() }
    }

    /// The value remembered for `key` less than the TTL ago (looked up by a borrowed form, e.g. `&str` for a
    /// `String` key, so a lookup allocates nothing).
    pub fn get<Q: Hash + Eq + ?Sized>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
    {
        let entries = self.lock();
        let (value, since) = entries.get(key)?;
        (since.elapsed() < self.ttl).then(|| value.clone())
    }

    /// Remembers `value` for `key`. When full, stale entries go first, then everything: memory stays bounded
    /// whatever keys the network sends.
    pub fn put(&self, key: K, value: V) {
        let mut entries = self.lock();
        if entries.len() >= self.max_entries && !entries.contains_key(&key) {
            let ttl = self.ttl;
            entries.retain(|_, (_, since)| since.elapsed() < ttl);
            if entries.len() >= self.max_entries {
                entries.clear();
            }
        }
        entries.insert(key, (value, Instant::now()));
    }

    /// Forgets the entries whose value matches.
    pub fn forget_where(&self, matches: impl Fn(&V) -> bool) {
        self.lock().retain(|_, (value, _)| !matches(value));
    }

    pub fn forget_all(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, (V, Instant)>> {
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_live_for_the_ttl_and_can_be_forgotten() {
        let cache = TtlCache::new(Duration::from_secs(60), 10);
        assert_eq!(cache.get(&"a"), None);
        cache.put("a", 1);
        cache.put("b", 2);
        assert_eq!((cache.get(&"a"), cache.get(&"b")), (Some(1), Some(2)));
        cache.forget_where(|value| *value == 1);
        assert_eq!((cache.get(&"a"), cache.get(&"b")), (None, Some(2)));
        cache.forget_all();
        assert_eq!(cache.get(&"b"), None);

        let expired = TtlCache::new(Duration::ZERO, 10);
        expired.put("a", 1);
        assert_eq!(expired.get(&"a"), None, "an entry older than the TTL is not trusted");
    }

    #[test]
    fn stays_bounded() {
        let cache = TtlCache::new(Duration::from_secs(60), 100);
        for n in 0..110 {
            cache.put(n, n);
        }
        assert!(cache.lock().len() <= 100);
        assert_eq!(cache.get(&109), Some(109));
    }
}
