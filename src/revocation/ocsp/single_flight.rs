//! Concurrent lookups of one certificate share one responder request.
//!
//! The first caller for a key becomes the leader and owns a
//! [`tokio::sync::watch`] sender; later callers subscribe to it. A burst of
//! connections from one client (or a thundering herd after a cache expiry)
//! therefore costs the responder one request, not one per connection.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::watch;

/// In-flight lookups by key.
#[derive(Debug)]
pub(crate) struct SingleFlight<K, V> {
    flights: Mutex<HashMap<K, watch::Receiver<Option<V>>>>,
}

/// How a caller takes part in a lookup.
pub(crate) enum Join<K: Eq + Hash + Clone, V: Clone> {
    /// The answer was already available (checked under the lock).
    Ready(V),
    /// This caller performs the lookup and must call [`Leader::finish`].
    Leader(Leader<K, V>),
    /// Another caller performs it; wait on the receiver.
    Follower(watch::Receiver<Option<V>>),
}

impl<K: Eq + Hash + Clone, V: Clone> SingleFlight<K, V> {
    pub(crate) fn new() -> Self {
        Self {
            flights: Mutex::new(HashMap::new()),
        }
    }

    /// Joins the lookup of `key`. `ready` runs under the lock first so a
    /// caller that missed the cache just before a leader published cannot
    /// start a second lookup.
    pub(crate) fn join(self: &Arc<Self>, key: &K, ready: impl FnOnce() -> Option<V>) -> Join<K, V> {
        let mut flights = self.flights.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(value) = ready() {
            return Join::Ready(value);
        }
        if let Some(rx) = flights.get(key) {
            return Join::Follower(rx.clone());
        }
        let (tx, rx) = watch::channel(None);
        flights.insert(key.clone(), rx.clone());
        Join::Leader(Leader {
            flight: Arc::clone(self),
            key: key.clone(),
            tx: Some(tx),
            rx,
        })
    }

    /// How many lookups are in flight.
    pub(crate) fn len(&self) -> usize {
        self.flights
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    fn release(&self, key: &K, rx: &watch::Receiver<Option<V>>, publish: impl FnOnce()) {
        let mut flights = self.flights.lock().unwrap_or_else(PoisonError::into_inner);
        publish();
        if flights.get(key).is_some_and(|r| r.same_channel(rx)) {
            flights.remove(key);
        }
    }
}

/// The caller performing a lookup. Dropping it without
/// [`finish`](Self::finish) (a cancelled or panicked lookup) removes the
/// flight, and its followers see the channel close.
pub(crate) struct Leader<K: Eq + Hash + Clone, V: Clone> {
    flight: Arc<SingleFlight<K, V>>,
    key: K,
    tx: Option<watch::Sender<Option<V>>>,
    rx: watch::Receiver<Option<V>>,
}

impl<K: Eq + Hash + Clone, V: Clone> Leader<K, V> {
    /// A receiver for the leader's own caller to wait on.
    pub(crate) fn subscribe(&self) -> watch::Receiver<Option<V>> {
        self.rx.clone()
    }

    /// Publishes `value`: `publish` (storing it in the cache) runs under the
    /// lock before the flight is removed, then followers are woken.
    pub(crate) fn finish(mut self, value: V, publish: impl FnOnce()) {
        self.flight.release(&self.key, &self.rx, publish);
        if let Some(tx) = self.tx.take() {
            // No receivers left is fine: every follower gave up.
            let _ = tx.send(Some(value));
        }
    }
}

impl<K: Eq + Hash + Clone, V: Clone> Drop for Leader<K, V> {
    fn drop(&mut self) {
        if self.tx.is_some() {
            self.flight.release(&self.key, &self.rx, || {});
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_leader_then_followers_then_ready() {
        let flight = Arc::new(SingleFlight::<u8, u32>::new());
        let Join::Leader(leader) = flight.join(&1, || None) else {
            panic!("first caller leads");
        };
        let Join::Follower(mut rx) = flight.join(&1, || None) else {
            panic!("second caller follows");
        };
        assert!(matches!(flight.join(&2, || None), Join::Leader(_)));
        assert_eq!(flight.len(), 1, "the dropped leader of key 2 cleaned up");
        leader.finish(7, || {});
        assert_eq!(*rx.borrow_and_update(), Some(7));
        assert_eq!(flight.len(), 0);
        assert!(matches!(flight.join(&1, || Some(7)), Join::Ready(7)));
    }

    #[test]
    fn an_abandoned_leader_closes_the_channel() {
        let flight = Arc::new(SingleFlight::<u8, u32>::new());
        let leader = flight.join(&1, || None);
        let Join::Follower(rx) = flight.join(&1, || None) else {
            panic!("second caller follows");
        };
        drop(leader);
        assert!(rx.has_changed().is_err(), "sender gone");
        assert!(matches!(flight.join(&1, || None), Join::Leader(_)));
    }
}
