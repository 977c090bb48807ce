use std::sync::Arc;

use confab_domain::{DisplayName, Email, Password, User, UserId, Username, ValidationErrors};

use crate::AppError;
use crate::ports::{
    AccessToken, Clock, NewUser, PasswordHasher, TokenError, TokenIssuer, UserRepository,
};

/// What a client sends to sign up, unvalidated.
#[derive(Debug, Clone)]
pub struct SignupInput {
    /// Wanted username.
    pub username: String,
    /// Email address.
    pub email: String,
    /// Password in clear.
    pub password: String,
    /// Optional display name; the username when absent.
    pub display_name: Option<String>,
}

/// A signed-in user and their access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The account.
    pub user: User,
    /// The access token.
    pub access: AccessToken,
}

/// Accounts and tokens: sign up, log in, who am I, and checking a presented token.
pub struct AuthService {
    users: Arc<dyn UserRepository>,
    hasher: Arc<dyn PasswordHasher>,
    tokens: Arc<dyn TokenIssuer>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for AuthService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthService").finish_non_exhaustive()
    }
}

/// The one answer for every failed login, so that it does not reveal which accounts exist.
const BAD_CREDENTIALS: &str = "invalid login or password";

impl AuthService {
    /// The service over its ports.
    pub fn new(
        users: Arc<dyn UserRepository>,
        hasher: Arc<dyn PasswordHasher>,
        tokens: Arc<dyn TokenIssuer>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            users,
            hasher,
            tokens,
            clock,
        }
    }

    /// Creates an account and signs it in. Every invalid field is reported at once; a taken
    /// username or email is a `Conflict`.
    pub async fn signup(&self, input: SignupInput) -> Result<Session, AppError> {
        let mut errors = ValidationErrors::new();
        let username = errors.check(Username::parse(&input.username));
        let email = errors.check(Email::parse(&input.email));
        let password = errors.check(Password::parse(&input.password));
        let display_name = match input.display_name.as_deref() {
            Some(name) => errors.check(DisplayName::parse(name)),
            None => username.as_ref().map(DisplayName::from_username),
        };
        errors.clone().into_result()?;
        let (Some(username), Some(email), Some(password), Some(display_name)) =
            (username, email, password, display_name)
        else {
            return Err(errors.into());
        };

        if self.users.find_by_username(&username).await?.is_some() {
            return Err(AppError::Conflict("username is taken".into()));
        }
        if self.users.find_by_email(&email).await?.is_some() {
            return Err(AppError::Conflict("email is already registered".into()));
        }
        let password_hash = self.hasher.hash(&password).await?;
        let user = self
            .users
            .create(NewUser {
                id: UserId::generate(),
                username,
                display_name,
                email,
                password_hash,
                created_at: self.clock.now(),
            })
            .await?;
        tracing::info!(user_id = %user.id, "user signed up");
        self.session_for(user)
    }

    /// Signs in with a username or email and a password.
    pub async fn login(&self, login: &str, password: &str) -> Result<Session, AppError> {
        let login = login.trim().to_lowercase();
        let Some(credentials) = self.users.find_credentials(&login).await? else {
            return Err(AppError::Unauthorized(BAD_CREDENTIALS.into()));
        };
        if !self
            .hasher
            .verify(password, &credentials.password_hash)
            .await?
        {
            return Err(AppError::Unauthorized(BAD_CREDENTIALS.into()));
        }
        self.session_for(credentials.user)
    }

    /// The caller's own account.
    pub async fn me(&self, user: UserId) -> Result<User, AppError> {
        self.users
            .find_by_id(user)
            .await?
            .ok_or_else(|| AppError::Unauthorized("the account no longer exists".into()))
    }

    /// The user a bearer token belongs to, or `Unauthorized` saying why not.
    pub fn authenticate(&self, token: &str) -> Result<UserId, AppError> {
        self.tokens.verify(token).map_err(|error| match error {
            TokenError::Expired | TokenError::Invalid => AppError::Unauthorized(error.to_string()),
        })
    }

    fn session_for(&self, user: User) -> Result<Session, AppError> {
        let access = self.tokens.issue(user.id)?;
        Ok(Session { user, access })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::{
        MockClock, MockPasswordHasher, MockTokenIssuer, MockUserRepository, StoreError,
        UserCredentials,
    };
    use mockall::predicate::eq;

    fn now() -> confab_domain::Timestamp {
        chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn user(name: &str) -> User {
        let username = Username::parse(name).unwrap();
        User {
            id: UserId::generate(),
            display_name: DisplayName::from_username(&username),
            email: Email::parse(&format!("{name}@example.org")).unwrap(),
            username,
            created_at: now(),
        }
    }

    fn token_for(_: UserId) -> Result<AccessToken, AppError> {
        Ok(AccessToken {
            token: "tok".into(),
            expires_in: 900,
        })
    }

    struct Mocks {
        users: MockUserRepository,
        hasher: MockPasswordHasher,
        tokens: MockTokenIssuer,
    }

    impl Mocks {
        fn new() -> Self {
            Self {
                users: MockUserRepository::new(),
                hasher: MockPasswordHasher::new(),
                tokens: MockTokenIssuer::new(),
            }
        }

        fn service(self) -> AuthService {
            let mut clock = MockClock::new();
            clock.expect_now().returning(now);
            AuthService::new(
                Arc::new(self.users),
                Arc::new(self.hasher),
                Arc::new(self.tokens),
                Arc::new(clock),
            )
        }
    }

    fn signup_input(username: &str, email: &str, password: &str) -> SignupInput {
        SignupInput {
            username: username.into(),
            email: email.into(),
            password: password.into(),
            display_name: None,
        }
    }

    #[tokio::test]
    async fn signup_stores_the_normalised_account_with_a_hash_and_signs_in() {
        let mut mocks = Mocks::new();
        mocks
            .users
            .expect_find_by_username()
            .returning(|_| Ok(None));
        mocks.users.expect_find_by_email().returning(|_| Ok(None));
        mocks
            .hasher
            .expect_hash()
            .returning(|_| Ok("$argon2id$hash".into()));
        mocks
            .users
            .expect_create()
            .withf(|new| {
                new.username.as_str() == "ann"
                    && new.email.as_str() == "ann@example.org"
                    && new.password_hash == "$argon2id$hash"
                    && new.display_name.as_str() == "ann"
            })
            .returning(|new| {
                Ok(User {
                    id: new.id,
                    username: new.username,
                    display_name: new.display_name,
                    email: new.email,
                    created_at: new.created_at,
                })
            });
        mocks.tokens.expect_issue().returning(token_for);
        let session = mocks
            .service()
            .signup(signup_input("Ann", "ANN@example.org", "correct horse"))
            .await
            .unwrap();
        assert_eq!(session.user.username.as_str(), "ann");
        assert_eq!(session.access.token, "tok");
    }

    #[tokio::test]
    async fn signup_reports_every_invalid_field_and_touches_nothing() {
        let service = Mocks::new().service();
        let Err(AppError::Validation(errors)) =
            service.signup(signup_input("a", "nope", "short")).await
        else {
            panic!("expected a validation error");
        };
        let fields: Vec<_> = errors.errors().iter().map(|e| e.field).collect();
        assert_eq!(fields, ["username", "email", "password"]);
    }

    #[tokio::test]
    async fn signup_refuses_a_taken_username() {
        let mut mocks = Mocks::new();
        mocks
            .users
            .expect_find_by_username()
            .returning(|_| Ok(Some(user("ann"))));
        let result = mocks
            .service()
            .signup(signup_input("ann", "other@example.org", "password1"))
            .await;
        assert!(matches!(result, Err(AppError::Conflict(m)) if m.contains("username")));
    }

    #[tokio::test]
    async fn signup_refuses_a_taken_email() {
        let mut mocks = Mocks::new();
        mocks
            .users
            .expect_find_by_username()
            .returning(|_| Ok(None));
        mocks
            .users
            .expect_find_by_email()
            .returning(|_| Ok(Some(user("ann"))));
        let result = mocks
            .service()
            .signup(signup_input("bob", "ann@example.org", "password1"))
            .await;
        assert!(matches!(result, Err(AppError::Conflict(m)) if m.contains("email")));
    }

    #[tokio::test]
    async fn signup_race_lost_at_the_unique_index_is_a_conflict() {
        let mut mocks = Mocks::new();
        mocks
            .users
            .expect_find_by_username()
            .returning(|_| Ok(None));
        mocks.users.expect_find_by_email().returning(|_| Ok(None));
        mocks.hasher.expect_hash().returning(|_| Ok("h".into()));
        mocks
            .users
            .expect_create()
            .returning(|_| Err(StoreError::Conflict("username is taken".into())));
        let result = mocks
            .service()
            .signup(signup_input("bob", "bob@example.org", "password1"))
            .await;
        assert!(matches!(result, Err(AppError::Conflict(_))));
    }

    #[tokio::test]
    async fn login_accepts_username_or_email_case_insensitively() {
        let mut mocks = Mocks::new();
        let ann = user("ann");
        let stored = ann.clone();
        mocks
            .users
            .expect_find_credentials()
            .with(eq("ann@example.org"))
            .returning(move |_| {
                Ok(Some(UserCredentials {
                    user: stored.clone(),
                    password_hash: "h".into(),
                }))
            });
        mocks
            .hasher
            .expect_verify()
            .with(eq("secret pw"), eq("h"))
            .returning(|_, _| Ok(true));
        mocks.tokens.expect_issue().returning(token_for);
        let session = mocks
            .service()
            .login(" Ann@Example.org ", "secret pw")
            .await
            .unwrap();
        assert_eq!(session.user, ann);
    }

    #[tokio::test]
    async fn login_with_wrong_password_or_unknown_user_gives_the_same_answer() {
        let mut mocks = Mocks::new();
        let ann = user("ann");
        mocks
            .users
            .expect_find_credentials()
            .with(eq("ann"))
            .returning(move |_| {
                Ok(Some(UserCredentials {
                    user: ann.clone(),
                    password_hash: "h".into(),
                }))
            });
        mocks
            .users
            .expect_find_credentials()
            .with(eq("ghost"))
            .returning(|_| Ok(None));
        mocks.hasher.expect_verify().returning(|_, _| Ok(false));
        let service = mocks.service();
        let wrong = service.login("ann", "bad password").await.unwrap_err();
        let unknown = service.login("ghost", "bad password").await.unwrap_err();
        assert_eq!(wrong.to_string(), unknown.to_string());
        assert!(matches!(wrong, AppError::Unauthorized(_)));
    }

    #[tokio::test]
    async fn me_of_a_deleted_account_is_unauthorized() {
        let mut mocks = Mocks::new();
        mocks.users.expect_find_by_id().returning(|_| Ok(None));
        assert!(matches!(
            mocks.service().me(UserId::generate()).await,
            Err(AppError::Unauthorized(_))
        ));
    }

    #[test]
    fn authenticate_turns_token_errors_into_unauthorized() {
        let mut mocks = Mocks::new();
        mocks
            .tokens
            .expect_verify()
            .with(eq("old"))
            .returning(|_| Err(TokenError::Expired));
        mocks
            .tokens
            .expect_verify()
            .with(eq("junk"))
            .returning(|_| Err(TokenError::Invalid));
        let service = mocks.service();
        assert!(
            matches!(service.authenticate("old"), Err(AppError::Unauthorized(m)) if m.contains("expired"))
        );
        assert!(
            matches!(service.authenticate("junk"), Err(AppError::Unauthorized(m)) if m.contains("invalid"))
        );
    }
}
