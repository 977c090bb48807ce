use std::sync::Arc;

use confab_domain::UserId;

use crate::ports::{
    Clock, ConversationRepository, EventPublisher, PresenceStore, RateDecision, RateLimit,
    RateLimiter, UserRepository,
};
use crate::{AppError, Event, SessionId};

/// Who may open a socket: a cap per user, and a rate of attempts per client address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Sockets a user may hold at once, across instances.
    pub sockets_per_user: usize,
    /// Connection attempts per client address.
    pub attempts_per_address: RateLimit,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            sockets_per_user: 10,
            attempts_per_address: RateLimit::per_minute(60),
        }
    }
}

/// Who is online. A user is online while any of their devices is connected; the users who
/// share a conversation with them hear when that changes.
pub struct PresenceService {
    presence: Arc<dyn PresenceStore>,
    limiter: Arc<dyn RateLimiter>,
    limits: ConnectionLimits,
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
        limiter: Arc<dyn RateLimiter>,
        limits: ConnectionLimits,
        conversations: Arc<dyn ConversationRepository>,
        users: Arc<dyn UserRepository>,
        events: Arc<dyn EventPublisher>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            presence,
            limiter,
            limits,
            conversations,
            users,
            events,
            clock,
        }
    }

    /// Whether `user` may open another socket from `address`: refused (`rate_limited`) past
    /// the per-address rate of attempts or the per-user cap of sockets. A limiter or store
    /// that cannot be reached admits: a Redis outage must not lock everyone out.
    pub async fn admit(&self, user: UserId, address: Option<&str>) -> Result<(), AppError> {
        if let Some(address) = address {
            match self
                .limiter
                .hit(
                    &format!("connect:{address}"),
                    self.limits.attempts_per_address,
                )
                .await
            {
                Ok(RateDecision::Limited { retry_after }) => {
                    return Err(AppError::RateLimited { retry_after });
                }
                Ok(RateDecision::Allowed) => {}
                Err(error) => tracing::warn!(%error, "connection limiter unavailable; admitting"),
            }
        }
        match self.presence.sockets(user).await {
            Ok(open) if open >= self.limits.sockets_per_user => Err(AppError::RateLimited {
                // A socket frees a place only when one closes; a retry soon may find one.
                retry_after: std::time::Duration::from_secs(5),
            }),
            Ok(_) => Ok(()),
            Err(error) => {
                tracing::warn!(%error, "presence unavailable; admitting");
                Ok(())
            }
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
        limiter: crate::ports::MockRateLimiter,
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
                Arc::new(self.limiter),
                ConnectionLimits {
                    sockets_per_user: 2,
                    attempts_per_address: RateLimit::per_minute(5),
                },
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

    #[tokio::test]
    async fn a_user_at_the_socket_cap_is_refused_and_one_below_it_admitted() {
        for (open, admitted) in [(1, true), (2, false)] {
            let mut mocks = Mocks::default();
            mocks
                .limiter
                .expect_hit()
                .returning(|_, _| Ok(RateDecision::Allowed));
            mocks.presence.expect_sockets().returning(move |_| Ok(open));
            let result = mocks
                .service()
                .admit(UserId::generate(), Some("10.0.0.1"))
                .await;
            assert_eq!(result.is_ok(), admitted, "{open} sockets open");
            if !admitted {
                assert!(matches!(result, Err(AppError::RateLimited { .. })));
            }
        }
    }

    #[tokio::test]
    async fn too_many_attempts_from_one_address_are_refused_with_the_time_to_wait() {
        let mut mocks = Mocks::default();
        mocks
            .limiter
            .expect_hit()
            .withf(|key, _| key == "connect:10.0.0.1")
            .returning(|_, _| {
                Ok(RateDecision::Limited {
                    retry_after: std::time::Duration::from_secs(9),
                })
            });
        mocks.presence.expect_sockets().never();
        let result = mocks
            .service()
            .admit(UserId::generate(), Some("10.0.0.1"))
            .await;
        assert!(
            matches!(result, Err(AppError::RateLimited { retry_after }) if retry_after.as_secs() == 9)
        );
    }
}
