//! What the API and the dispatcher of one process share while it runs, outside the database: the
//! `hookrelay listen` sessions that deliveries to `listen://` endpoints are handed to ([`listeners`]), and the
//! feed of attempts that `hookrelay tail` follows ([`feed`]). Both live in memory: a listener or a tail is
//! connected to one process, and sees that process's deliveries.

pub mod feed;
pub mod listeners;

/// One process's live state, shared by its API (which streams it to clients) and its dispatcher.
pub struct Live {
    pub listeners: std::sync::Arc<listeners::Listeners>,
    pub attempts: feed::AttemptFeed,
    /// Set when the server shuts down: streams end then, instead of holding the shutdown until its grace period.
    closing: tokio::sync::watch::Sender<bool>,
}

impl Default for Live {
    fn default() -> Self {
        Self {
            listeners: Default::default(),
            attempts: Default::default(),
            closing: tokio::sync::watch::Sender::new(false),
        }
    }
}

impl Live {
    /// Ends every stream: the server is shutting down (clients reconnect to another process, or later).
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Resolves when [`Live::close`] is called (at once if it was).
    pub fn closed(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut closing = self.closing.subscribe();
        async move {
            // An error means the sender is gone, which also ends the streams.
            let _ = closing.wait_for(|closed| *closed).await;
        }
    }
}

impl std::fmt::Debug for Live {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Live").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn closing_ends_the_wait_of_streams_opened_before_and_after() {
        let live = Live::default();
        let before = live.closed();
        live.close();
        before.await;
        live.closed().await;
    }
}
