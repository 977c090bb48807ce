//! A fresh, migrated database for each test.
//!
//! By default each [`TestDatabase`] is a SQLite file in its own temporary directory. When
//! `CONFAB_TEST_DATABASE_URL` names a Postgres server (`postgres://postgres@127.0.0.1:5432/postgres`),
//! each one is instead a new database on that server, named `confab_test_<uuid>`, dropped
//! again when the `TestDatabase` is. Tests never share state, and the same tests run on both
//! backends: with the variable set and the server down, they fail rather than skip.

use std::time::Duration;

use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectOptions, ConnectionTrait, Database, DatabaseConnection,
    DatabaseTransaction, DbBackend, DbErr, EntityTrait, QueryFilter, Statement, TransactionTrait,
};

use crate::entities::{conversation_members, conversations};
use crate::{connect, migrate_up};

/// The variable that points the tests at a Postgres server.
pub const DATABASE_URL_VAR: &str = "CONFAB_TEST_DATABASE_URL";

/// A database of one's own, migrated and ready. Keep it alive for as long as the database is
/// in use: dropping it deletes the database.
#[derive(Debug)]
pub struct TestDatabase {
    /// A URL that [`connect`] accepts, for code under test that opens its own pool (a whole
    /// server started by an integration test, say).
    pub url: String,
    /// A pool on it.
    pub db: DatabaseConnection,
    backend: Backend,
}

#[derive(Debug)]
enum Backend {
    /// Deleted with the directory.
    Sqlite { _dir: tempfile::TempDir },
    /// Dropped through the server's maintenance database when the `TestDatabase` is.
    Postgres { server_url: String, name: String },
}

impl TestDatabase {
    /// A new, empty, migrated database: on the Postgres server of `CONFAB_TEST_DATABASE_URL`
    /// if it is set, in a temporary SQLite file otherwise.
    ///
    /// # Panics
    ///
    /// If the database cannot be created or migrated, notably when `CONFAB_TEST_DATABASE_URL`
    /// is set and its server cannot be reached.
    pub async fn create() -> Self {
        match std::env::var(DATABASE_URL_VAR) {
            Ok(server_url) if !server_url.trim().is_empty() => Self::postgres(server_url).await,
            _ => Self::sqlite().await,
        }
    }

    /// Holds a write on conversation `id`'s row open, as another writer's long transaction
    /// would: messages appended to it wait until [`HeldConversation::release`]. For tests of
    /// what clients see while a send is slow.
    pub async fn hold_conversation(&self, id: uuid::Uuid) -> HeldConversation {
        let transaction = self.db.begin().await.expect("begin a transaction");
        // Writes the row without changing it: on Postgres that takes the row's lock, on
        // SQLite the database's write lock.
        conversations::Entity::update_many()
            .col_expr(
                conversations::Column::LastSeq,
                Expr::col(conversations::Column::LastSeq),
            )
            .filter(conversations::Column::Id.eq(id))
            .exec(&transaction)
            .await
            .expect("write the conversation's row");
        HeldConversation { transaction }
    }

    /// Mutes `user` in `conversation` until `until`, or lifts the mute with `None`, as a
    /// moderator would. Moderation has no endpoint yet; this is how tests set a mute up.
    ///
    /// # Panics
    ///
    /// If the membership cannot be written.
    pub async fn mute(
        &self,
        conversation: uuid::Uuid,
        user: uuid::Uuid,
        until: Option<chrono::DateTime<chrono::Utc>>,
    ) {
        let changed = conversation_members::Entity::update_many()
            .col_expr(conversation_members::Column::MutedUntil, Expr::value(until))
            .filter(conversation_members::Column::ConversationId.eq(conversation))
            .filter(conversation_members::Column::UserId.eq(user))
            .exec(&self.db)
            .await
            .expect("write the mute");
        assert_eq!(
            changed.rows_affected, 1,
            "{user} is a member of {conversation}"
        );
    }

    /// Ends every other session on this Postgres database, as a Postgres restart or a proxy
    /// dropping its links would, and waits until they are gone; returns how many there were.
    /// Pools that held them find out on their next use. On SQLite there are no sessions to
    /// end: returns 0.
    ///
    /// # Panics
    ///
    /// If the sessions cannot be listed or ended, or are still there after 10 s.
    pub async fn end_other_sessions(&self) -> usize {
        if !self.is_postgres() {
            return 0;
        }
        // A connection of its own, outside the pool under test, so that ending the others
        // never ends it and what the pool does with dead connections cannot change the outcome.
        let own = connect_server(&self.url)
            .await
            .expect("connect to the test database");
        let query = |sql: String| {
            let own = &own;
            async move {
                let rows = own
                    .query_all_raw(Statement::from_string(DbBackend::Postgres, sql.clone()))
                    .await
                    .unwrap_or_else(|err| panic!("{sql}: {err}"));
                rows.iter()
                    .map(|row| row.try_get::<i32>("", "pid").expect("a session's pid"))
                    .collect::<Vec<i32>>()
            }
        };
        // The test's own pool may hold sessions too; those end as well.
        let pids = query(
            // In the select list, so that it runs only for the rows the filter kept: a
            // condition in the filter may be evaluated before the others.
            "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()"
                .to_owned(),
        )
        .await;
        if pids.is_empty() {
            return 0;
        }
        let list = pids
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        for _ in 0..100 {
            let left = query(format!(
                "SELECT pid FROM pg_stat_activity WHERE pid IN ({list})"
            ))
            .await;
            if left.is_empty() {
                let _ = own.close().await;
                return pids.len();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the ended sessions were still there after 10 s");
    }

    /// Whether this database is on Postgres rather than SQLite.
    pub fn is_postgres(&self) -> bool {
        matches!(self.backend, Backend::Postgres { .. })
    }

    async fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("create a temporary directory for SQLite");
        let url = format!("sqlite://{}", dir.path().join("confab.db").display());
        let db = connect(&url).await.expect("open the SQLite test database");
        migrate_up(&db)
            .await
            .expect("migrate the SQLite test database");
        Self {
            url,
            db,
            backend: Backend::Sqlite { _dir: dir },
        }
    }

    async fn postgres(server_url: String) -> Self {
        let name = format!("confab_test_{}", uuid::Uuid::new_v4().simple());
        let server = connect_server(&server_url).await.unwrap_or_else(|err| {
            panic!(
                "{DATABASE_URL_VAR} is set, but the Postgres server at {} cannot be reached: {err}",
                redact_password(&server_url)
            )
        });
        server
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
            .unwrap_or_else(|err| panic!("create test database {name}: {err}"));
        server
            .close()
            .await
            .expect("close the maintenance connection");

        let url = with_database(&server_url, &name);
        // Built before anything can fail, so that a failed migration still drops the database.
        let mut test_db = Self {
            url,
            db: DatabaseConnection::default(),
            backend: Backend::Postgres { server_url, name },
        };
        test_db.db = connect(&test_db.url)
            .await
            .expect("connect to the new test database");
        migrate_up(&test_db.db)
            .await
            .expect("migrate the Postgres test database");
        test_db
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Backend::Postgres { server_url, name } = &self.backend else {
            return;
        };
        // Closing the pool gracefully would need the runtime it was opened on, and that runtime
        // is blocked in this very drop. Dropping it closes its idle connections, and `FORCE`
        // ends any session still open (a server under test that still holds a pool, say).
        drop(std::mem::take(&mut self.db));
        let (server_url, name) = (server_url.clone(), name.clone());
        // Drop cannot await, and may run inside a runtime that must not be blocked from
        // within: a thread of its own with a runtime of its own does the async work.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|err| err.to_string())?;
            runtime.block_on(async {
                let server = connect_server(&server_url)
                    .await
                    .map_err(|err| err.to_string())?;
                let result = server
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .await;
                let _ = server.close().await;
                result.map(drop).map_err(|err| err.to_string())
            })
        })
        .join();
        // Panicking in drop would abort a test that is already unwinding; a left-over
        // database is worth a message, not a crash.
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(err)) => eprintln!("could not drop test database {}: {err}", self.url),
            Err(_) => eprintln!("dropping test database {} panicked", self.url),
        }
    }
}

/// One connection to the server's maintenance database, given up on after a few seconds: a
/// server that is down should fail the test quickly, not after the pool's usual 30 s.
async fn connect_server(server_url: &str) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(server_url);
    options
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .sqlx_logging(false);
    Database::connect(options).await
}

/// `server_url` with its database (the URL path) replaced by `database`.
fn with_database(server_url: &str, database: &str) -> String {
    let (base, query) = match server_url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (server_url, None),
    };
    let authority = base.find("://").map_or(0, |scheme_end| scheme_end + 3);
    let path = base[authority..]
        .find('/')
        .map_or(base.len(), |slash| authority + slash);
    let mut url = format!("{}/{database}", &base[..path]);
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    url
}

/// `url` with any password replaced by `***`, fit for a panic message.
fn redact_password(url: &str) -> String {
    let authority = url.find("://").map_or(0, |scheme_end| scheme_end + 3);
    let Some(at) = url[authority..].find('@').map(|at| authority + at) else {
        return url.to_owned();
    };
    match url[authority..at].find(':') {
        Some(colon) => format!("{}:***{}", &url[..authority + colon], &url[at..]),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_database_replaces_only_the_path() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "x"),
            "postgres://u:p@h/x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:5432", "x"),
            "postgres://h:5432/x"
        );
    }

    #[test]
    fn redact_password_hides_only_the_password() {
        assert_eq!(
            redact_password("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(redact_password("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_password("postgres://h/db"), "postgres://h/db");
    }
}

/// A write held open on a conversation's row (see [`TestDatabase::hold_conversation`]).
#[derive(Debug)]
pub struct HeldConversation {
    transaction: DatabaseTransaction,
}

impl HeldConversation {
    /// Ends the held transaction without changing anything; waiting appends go on.
    pub async fn release(self) {
        self.transaction
            .rollback()
            .await
            .expect("roll the held transaction back");
    }
}
