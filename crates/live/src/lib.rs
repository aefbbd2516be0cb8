//! What the API and the dispatcher of one process share while it runs, outside the database: the
//! `hookrelay listen` sessions that deliveries to `listen://` endpoints are handed to ([`listeners`]), and the
//! feed of attempts that `hookrelay tail` follows ([`feed`]). Both live in memory: a listener or a tail is
//! connected to one process, and sees that process's deliveries.

pub mod feed;
pub mod listeners;

/// One process's live state, shared by its API (which streams it to clients) and its dispatcher.
#[derive(Default)]
pub struct Live {
    pub listeners: std::sync::Arc<listeners::Listeners>,
    pub attempts: feed::AttemptFeed,
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live").finish_non_exhaustive()
    }
}
