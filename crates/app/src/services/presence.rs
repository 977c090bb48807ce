use std::sync::Arc;

use confab_domain::UserId;

use crate::ports::{Clock, ConversationRepository, EventPublisher, PresenceStore, UserRepository};
use crate::{AppError, Event, SessionId};

/// Who is online. A user is online while any of their devices is connected; the users who
/// share a conversation with them hear when that changes.
pub struct PresenceService {
    presence: Arc<dyn PresenceStore>,
    conversations: Arc<dyn ConversationRepository>,
    users: Arc<dyn UserRepository>,
    events: Arc<dyn EventPublisher>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for PresenceService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PresenceService").finish_non_exhaustive()
    }
}

impl PresenceService {
    /// The service over its ports.
    pub fn new(
        presence: Arc<dyn PresenceStore>,
        conversations: Arc<dyn ConversationRepository>,
        users: Arc<dyn UserRepository>,
        events: Arc<dyn EventPublisher>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            presence,
            conversations,
            users,
            events,
            clock,
        }
    }

    /// A device of `user` connected. If it is their first, their contacts hear they are
    /// online. Returns the contacts who are online now, for the new device.
    pub async fn connected(
        &self,
        user: UserId,
        session: SessionId,
    ) -> Result<Vec<UserId>, AppError> {
        let first = self.presence.connected(user, session).await?;
        let contacts = self.conversations.contacts(user).await?;
        if first && !contacts.is_empty() {
            self.events
                .publish(Event::Presence {
                    user_id: user,
                    online: true,
                    last_seen_at: None,
                    recipients: contacts.clone(),
                })
                .await;
        }
        Ok(self.presence.online(&contacts).await?)
    }

    /// A device of `user` went away (closed, or silent past the heartbeat). If it was their
    /// last, their last-seen time is stored and their contacts hear they are offline.
    pub async fn disconnected(&self, user: UserId, session: SessionId) -> Result<(), AppError> {
        if !self.presence.disconnected(user, session).await? {
            return Ok(());
        }
        self.went_offline(user).await
    }

    /// Announces the users whose devices vanished with their instance (see
    /// `PresenceStore::expired`). Run periodically by every instance.
    pub async fn sweep(&self) -> Result<usize, AppError> {
        let gone = self.presence.expired().await?;
        for user in &gone {
            self.went_offline(*user).await?;
        }
        Ok(gone.len())
    }

    async fn went_offline(&self, user: UserId) -> Result<(), AppError> {
        let now = self.clock.now();
        self.users.set_last_seen(user, now).await?;
        let contacts = self.conversations.contacts(user).await?;
        if !contacts.is_empty() {
            self.events
                .publish(Event::Presence {
                    user_id: user,
                    online: false,
                    last_seen_at: Some(now),
                    recipients: contacts,
                })
                .await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{
        MockClock, MockConversationRepository, MockEventPublisher, MockPresenceStore,
        MockUserRepository,
    };

    fn now() -> confab_domain::Timestamp {
        chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    #[derive(Default)]
    struct Mocks {
        presence: MockPresenceStore,
        conversations: MockConversationRepository,
        users: MockUserRepository,
        events: MockEventPublisher,
    }

    impl Mocks {
        fn service(self) -> PresenceService {
            let mut clock = MockClock::new();
            clock.expect_now().returning(now);
            PresenceService::new(
                Arc::new(self.presence),
                Arc::new(self.conversations),
                Arc::new(self.users),
                Arc::new(self.events),
                Arc::new(clock),
            )
        }
    }

    #[tokio::test]
    async fn the_first_device_announces_online_to_contacts_and_learns_who_is_online() {
        let (ann, bob, cid) = (UserId::generate(), UserId::generate(), UserId::generate());
        let mut mocks = Mocks::default();
        mocks.presence.expect_connected().returning(|_, _| Ok(true));
        mocks
            .conversations
            .expect_contacts()
            .returning(move |_| Ok(vec![bob, cid]));
        mocks
            .presence
            .expect_online()
            .returning(move |_| Ok(vec![bob]));
        mocks.events.expect_publish().times(1).withf(move |e| matches!(e,
            Event::Presence { user_id, online: true, recipients, .. } if *user_id == ann && recipients == &vec![bob, cid]))
            .returning(|_| ());
        assert_eq!(
            mocks
                .service()
                .connected(ann, SessionId::generate())
                .await
                .unwrap(),
            vec![bob]
        );
    }

    #[tokio::test]
    async fn a_second_device_announces_nothing() {
        let mut mocks = Mocks::default();
        mocks
            .presence
            .expect_connected()
            .returning(|_, _| Ok(false));
        mocks
            .conversations
            .expect_contacts()
            .returning(|_| Ok(vec![UserId::generate()]));
        mocks.presence.expect_online().returning(|_| Ok(vec![]));
        mocks.events.expect_publish().never();
        mocks
            .service()
            .connected(UserId::generate(), SessionId::generate())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn the_last_device_leaving_stores_last_seen_and_announces_offline() {
        let (ann, bob) = (UserId::generate(), UserId::generate());
        let mut mocks = Mocks::default();
        mocks
            .presence
            .expect_disconnected()
            .returning(|_, _| Ok(true));
        mocks
            .users
            .expect_set_last_seen()
            .withf(move |u, at| *u == ann && *at == now())
            .times(1)
            .returning(|_, _| Ok(()));
        mocks
            .conversations
            .expect_contacts()
            .returning(move |_| Ok(vec![bob]));
        mocks
            .events
            .expect_publish()
            .times(1)
            .withf(|e| {
                matches!(e,
            Event::Presence { online: false, last_seen_at: Some(at), .. } if *at == now())
            })
            .returning(|_| ());
        mocks
            .service()
            .disconnected(ann, SessionId::generate())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_device_leaving_while_another_stays_changes_nothing() {
        let mut mocks = Mocks::default();
        mocks
            .presence
            .expect_disconnected()
            .returning(|_, _| Ok(false));
        mocks.users.expect_set_last_seen().never();
        mocks.events.expect_publish().never();
        mocks
            .service()
            .disconnected(UserId::generate(), SessionId::generate())
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_sweep_announces_each_user_whose_sockets_vanished_with_their_instance() {
        let (ann, bob) = (UserId::generate(), UserId::generate());
        let mut mocks = Mocks::default();
        mocks
            .presence
            .expect_expired()
            .times(1)
            .returning(move || Ok(vec![ann]));
        mocks
            .users
            .expect_set_last_seen()
            .withf(move |u, _| *u == ann)
            .times(1)
            .returning(|_, _| Ok(()));
        mocks
            .conversations
            .expect_contacts()
            .returning(move |_| Ok(vec![bob]));
        mocks
            .events
            .expect_publish()
            .times(1)
            .withf(move |e| {
                matches!(e,
            Event::Presence { user_id, online: false, .. } if *user_id == ann)
            })
            .returning(|_| ());
        assert_eq!(mocks.service().sweep().await.unwrap(), 1);
    }
}
