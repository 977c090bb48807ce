use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;
use confab_app::SessionId;
use confab_app::ports::{PresenceStore, StoreResult};
use confab_domain::UserId;

/// Presence for a single instance: a user is online while this process holds one of their
/// sockets. The Redis store takes over when instances share users.
#[derive(Debug, Default)]
pub struct InProcessPresence {
    sessions: Mutex<HashMap<UserId, HashSet<SessionId>>>,
}

impl InProcessPresence {
    /// Nobody online.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl PresenceStore for InProcessPresence {
    async fn connected(&self, user: UserId, session: SessionId) -> StoreResult<bool> {
        let mut sessions = self
            .sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mine = sessions.entry(user).or_default();
        mine.insert(session);
        Ok(mine.len() == 1)
    }

    async fn disconnected(&self, user: UserId, session: SessionId) -> StoreResult<bool> {
        let mut sessions = self
            .sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let Some(mine) = sessions.get_mut(&user) else {
            return Ok(false);
        };
        let was_there = mine.remove(&session);
        if mine.is_empty() {
            sessions.remove(&user);
            return Ok(was_there);
        }
        Ok(false)
    }

    async fn sockets(&self, user: UserId) -> StoreResult<usize> {
        let sessions = self
            .sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Ok(sessions.get(&user).map_or(0, HashSet::len))
    }

    async fn online(&self, users: &[UserId]) -> StoreResult<Vec<UserId>> {
        let sessions = self
            .sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Ok(users
            .iter()
            .copied()
            .filter(|user| sessions.contains_key(user))
            .collect())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn online_from_the_first_socket_to_the_last() {
        let presence = InProcessPresence::new();
        let (ann, bob) = (UserId::generate(), UserId::generate());
        let (tab1, tab2) = (SessionId::generate(), SessionId::generate());
        assert!(presence.connected(ann, tab1).await.unwrap());
        assert!(!presence.connected(ann, tab2).await.unwrap());
        assert_eq!(presence.online(&[ann, bob]).await.unwrap(), vec![ann]);
        assert!(!presence.disconnected(ann, tab1).await.unwrap());
        assert!(presence.disconnected(ann, tab2).await.unwrap());
        assert!(presence.online(&[ann]).await.unwrap().is_empty());
        assert!(
            !presence.disconnected(ann, tab2).await.unwrap(),
            "a second goodbye is not news"
        );
    }
}
