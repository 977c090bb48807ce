//! [`UserRepository`] on sea-orm.

use async_trait::async_trait;
use confab_app::ports::{NewUser, StoreResult, UserCredentials, UserRepository};
use confab_domain::{Email, Timestamp, User, UserId, Username};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter};

use crate::convert;
use crate::entities::users;
use crate::error::store_error;

/// User accounts in the `users` table.
#[derive(Debug, Clone)]
pub struct SqlUserRepository {
    db: DatabaseConnection,
}

impl SqlUserRepository {
    /// The repository over `db`.
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    async fn find_one(&self, condition: Condition) -> StoreResult<Option<users::Model>> {
        users::Entity::find()
            .filter(condition)
            .one(&self.db)
            .await
            .map_err(store_error)
    }
}

#[async_trait]
impl UserRepository for SqlUserRepository {
    async fn create(&self, user: NewUser) -> StoreResult<User> {
        // The unique indexes decide, not a prior lookup: two signups racing for one name would
        // both pass a lookup.
        users::Entity::insert(convert::new_user_row(&user))
            .exec_without_returning(&self.db)
            .await
            .map_err(store_error)?;
        Ok(convert::created_user(user))
    }

    async fn set_last_seen(&self, user: UserId, at: Timestamp) -> StoreResult<()> {
        users::Entity::update_many()
            .col_expr(users::Column::LastSeenAt, Expr::value(at))
            .filter(users::Column::Id.eq(user.as_uuid()))
            .exec(&self.db)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn find_by_id(&self, id: UserId) -> StoreResult<Option<User>> {
        let row = self
            .find_one(Condition::all().add(users::Column::Id.eq(id.as_uuid())))
            .await?;
        row.map(convert::user).transpose()
    }

    async fn find_many(&self, ids: &[UserId]) -> StoreResult<Vec<User>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = users::Entity::find()
            .filter(users::Column::Id.is_in(ids.iter().map(UserId::as_uuid)))
            .all(&self.db)
            .await
            .map_err(store_error)?;
        convert::all(rows, convert::user)
    }

    async fn find_by_username(&self, username: &Username) -> StoreResult<Option<User>> {
        let row = self
            .find_one(Condition::all().add(users::Column::Username.eq(username.as_str())))
            .await?;
        row.map(convert::user).transpose()
    }

    async fn find_by_usernames(&self, usernames: &[Username]) -> StoreResult<Vec<User>> {
        if usernames.is_empty() {
            return Ok(Vec::new());
        }
        let rows = users::Entity::find()
            .filter(users::Column::Username.is_in(usernames.iter().map(Username::as_str)))
            .all(&self.db)
            .await
            .map_err(store_error)?;
        convert::all(rows, convert::user)
    }

    async fn find_by_email(&self, email: &Email) -> StoreResult<Option<User>> {
        let row = self
            .find_one(Condition::all().add(users::Column::Email.eq(email.as_str())))
            .await?;
        row.map(convert::user).transpose()
    }

    async fn find_credentials(&self, login: &str) -> StoreResult<Option<UserCredentials>> {
        // A username cannot contain `@` and an email must, so at most one account matches.
        let condition = Condition::any()
            .add(users::Column::Username.eq(login))
            .add(users::Column::Email.eq(login));
        let row = self.find_one(condition).await?;
        row.map(convert::credentials).transpose()
    }
}
