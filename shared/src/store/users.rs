//! Accounts, and the blocks between them.

use tokio_postgres::Row;

use super::{Store, StoreError};
use crate::protocol::User;

fn user(r: &Row) -> User {
    User {
        id: r.get("id"),
        username: r.get("username"),
        created_at: r.get("created_at"),
    }
}

impl Store {
    /// Creates a user; `Conflict` when the name is taken (case-insensitively).
    pub async fn create_user(
        &self,
        username: &str,
        password_hash: &str,
    ) -> Result<User, StoreError> {
        let c = self.client().await?;
        let r = c
            .query_one(
                "INSERT INTO users (username, password_hash) VALUES ($1, $2)
                 RETURNING id, username, created_at",
                &[&username, &password_hash],
            )
            .await?;
        Ok(user(&r))
    }

    /// The user and their password hash, by name (case-insensitive).
    pub async fn user_with_hash(
        &self,
        username: &str,
    ) -> Result<Option<(User, String)>, StoreError> {
        let c = self.client().await?;
        let r = c
            .query_opt(
                "SELECT id, username, created_at, password_hash FROM users
                 WHERE lower(username) = lower($1)",
                &[&username],
            )
            .await?;
        Ok(r.map(|r| (user(&r), r.get("password_hash"))))
    }

    pub async fn user_by_id(&self, id: i64) -> Result<Option<User>, StoreError> {
        let c = self.client().await?;
        let r = c
            .query_opt(
                "SELECT id, username, created_at FROM users WHERE id = $1",
                &[&id],
            )
            .await?;
        Ok(r.as_ref().map(user))
    }

    /// Users with id greater than `after`, ascending, at most `limit`.
    pub async fn list_users(&self, after: i64, limit: i64) -> Result<Vec<User>, StoreError> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT id, username, created_at FROM users WHERE id > $1 ORDER BY id LIMIT $2",
                &[&after, &limit],
            )
            .await?;
        Ok(rows.iter().map(user).collect())
    }

    /// The users among `ids`, ascending by id.
    pub async fn users_by_ids(&self, ids: &[i64]) -> Result<Vec<User>, StoreError> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT id, username, created_at FROM users WHERE id = ANY($1) ORDER BY id",
                &[&ids],
            )
            .await?;
        Ok(rows.iter().map(user).collect())
    }

    /// `blocker` blocks `blocked`; `true` when it was not blocked yet.
    pub async fn block(&self, blocker: i64, blocked: i64) -> Result<bool, StoreError> {
        let c = self.client().await?;
        let n = c
            .execute(
                "INSERT INTO user_blocks (blocker, blocked) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&blocker, &blocked],
            )
            .await?;
        Ok(n == 1)
    }

    /// `blocker` unblocks `blocked`; `true` when it was blocked.
    pub async fn unblock(&self, blocker: i64, blocked: i64) -> Result<bool, StoreError> {
        let c = self.client().await?;
        let n = c
            .execute(
                "DELETE FROM user_blocks WHERE blocker = $1 AND blocked = $2",
                &[&blocker, &blocked],
            )
            .await?;
        Ok(n == 1)
    }

    /// The users `blocker` blocks, ascending by id.
    pub async fn blocked_by(&self, blocker: i64) -> Result<Vec<User>, StoreError> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT u.id, u.username, u.created_at FROM user_blocks b
                 JOIN users u ON u.id = b.blocked WHERE b.blocker = $1 ORDER BY u.id",
                &[&blocker],
            )
            .await?;
        Ok(rows.iter().map(user).collect())
    }

    /// Whether either of `a` and `b` blocks the other.
    pub async fn blocked_between(&self, a: i64, b: i64) -> Result<bool, StoreError> {
        let c = self.client().await?;
        let r = c
            .query_opt(
                "SELECT 1 FROM user_blocks
                 WHERE (blocker = $1 AND blocked = $2) OR (blocker = $2 AND blocked = $1)",
                &[&a, &b],
            )
            .await?;
        Ok(r.is_some())
    }
}
