//! The `grants`, `grant_revisions` and `grant_changes` tables.

use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::grant::{Change, Grant};

const COLUMNS: &str = "id, user_id, email, role, created_at, updated_at, bound_at";

/// Named so that a violation can be told apart.
pub const USER_KEY: &str = "grants_instance_user_key";
pub const INVITATION_KEY: &str = "grants_instance_invitation_key";

/// The grants of an instance, oldest first.
pub async fn of_instance(conn: &mut PgConnection, instance_id: &str) -> sqlx::Result<Vec<Grant>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM grants WHERE instance_id = $1 ORDER BY created_at, id"
    ))
    .bind(instance_id)
    .fetch_all(conn)
    .await
}

pub async fn get(
    conn: &mut PgConnection,
    instance_id: &str,
    id: Uuid,
) -> sqlx::Result<Option<Grant>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM grants WHERE instance_id = $1 AND id = $2"
    ))
    .bind(instance_id)
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// The role of this user's own grant on the instance.
pub async fn role_of(
    conn: &mut PgConnection,
    instance_id: &str,
    user_id: &str,
) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("SELECT role FROM grants WHERE instance_id = $1 AND user_id = $2")
        .bind(instance_id)
        .bind(user_id)
        .fetch_optional(conn)
        .await
}

/// The unbound invitation to this email on the instance.
pub async fn invitation(
    conn: &mut PgConnection,
    instance_id: &str,
    email: &str,
) -> sqlx::Result<Option<Grant>> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM grants WHERE instance_id = $1 AND email = $2 AND user_id IS NULL"
    ))
    .bind(instance_id)
    .bind(email)
    .fetch_optional(conn)
    .await
}

pub async fn insert(
    conn: &mut PgConnection,
    instance_id: &str,
    user_id: Option<&str>,
    email: Option<&str>,
    role: &str,
) -> sqlx::Result<Grant> {
    sqlx::query_as(&format!(
        "INSERT INTO grants (instance_id, user_id, email, role) VALUES ($1, $2, $3, $4) \
         RETURNING {COLUMNS}"
    ))
    .bind(instance_id)
    .bind(user_id)
    .bind(email)
    .bind(role)
    .fetch_one(conn)
    .await
}

pub async fn set_role(
    conn: &mut PgConnection,
    instance_id: &str,
    id: Uuid,
    role: &str,
) -> sqlx::Result<Option<Grant>> {
    sqlx::query_as(&format!(
        "UPDATE grants SET role = $3, updated_at = now() WHERE instance_id = $1 AND id = $2 \
         RETURNING {COLUMNS}"
    ))
    .bind(instance_id)
    .bind(id)
    .bind(role)
    .fetch_optional(conn)
    .await
}

/// Inserts many grants of one instance (same order of fields as [`insert`]).
pub async fn insert_many(
    conn: &mut PgConnection,
    instance_id: &str,
    user_ids: &[Option<&str>],
    emails: &[Option<&str>],
    roles: &[&str],
) -> sqlx::Result<Vec<Grant>> {
    sqlx::query_as(&format!(
        "INSERT INTO grants (instance_id, user_id, email, role) \
         SELECT $1, u, e, r FROM UNNEST($2::text[], $3::text[], $4::text[]) AS n(u, e, r) \
         RETURNING {COLUMNS}"
    ))
    .bind(instance_id)
    .bind(user_ids)
    .bind(emails)
    .bind(roles)
    .fetch_all(conn)
    .await
}

/// Gives many grants of one instance new roles: `(grant, role)` pairs as two lists.
pub async fn set_roles(
    conn: &mut PgConnection,
    instance_id: &str,
    ids: &[Uuid],
    roles: &[&str],
) -> sqlx::Result<Vec<Grant>> {
    sqlx::query_as(&format!(
        "UPDATE grants SET role = n.new_role, updated_at = now() \
         FROM UNNEST($2::uuid[], $3::text[]) AS n(grant_id, new_role) \
         WHERE grants.instance_id = $1 AND grants.id = n.grant_id RETURNING {COLUMNS}"
    ))
    .bind(instance_id)
    .bind(ids)
    .bind(roles)
    .fetch_all(conn)
    .await
}

/// Deletes many grants of one instance; answers those it deleted.
pub async fn delete_many(
    conn: &mut PgConnection,
    instance_id: &str,
    ids: &[Uuid],
) -> sqlx::Result<Vec<Grant>> {
    sqlx::query_as(&format!(
        "DELETE FROM grants WHERE instance_id = $1 AND id = ANY($2) RETURNING {COLUMNS}"
    ))
    .bind(instance_id)
    .bind(ids)
    .fetch_all(conn)
    .await
}

/// Binds an invitation to the user who accepted it.
pub async fn bind(
    conn: &mut PgConnection,
    instance_id: &str,
    id: Uuid,
    user_id: &str,
) -> sqlx::Result<Option<Grant>> {
    sqlx::query_as(&format!(
        "UPDATE grants SET user_id = $3, bound_at = now(), updated_at = now() \
         WHERE instance_id = $1 AND id = $2 AND user_id IS NULL RETURNING {COLUMNS}"
    ))
    .bind(instance_id)
    .bind(id)
    .bind(user_id)
    .fetch_optional(conn)
    .await
}

pub async fn delete(
    conn: &mut PgConnection,
    instance_id: &str,
    id: Uuid,
) -> sqlx::Result<Option<Grant>> {
    sqlx::query_as(&format!(
        "DELETE FROM grants WHERE instance_id = $1 AND id = $2 RETURNING {COLUMNS}"
    ))
    .bind(instance_id)
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// A user's grants across instances: (instance id, grant); answered as it is by
/// `GET /v1/users/{user_id}/grants`.
#[derive(Debug, Clone, serde::Serialize, sqlx::FromRow)]
pub struct UserGrant {
    pub instance_id: String,
    pub status: String,
    pub role: String,
    pub grant_id: Option<Uuid>,
}

/// The instances this user owns (role `owner`) or holds a grant on, by instance id.
pub async fn of_user(conn: &mut PgConnection, user_id: &str) -> sqlx::Result<Vec<UserGrant>> {
    sqlx::query_as(
        "SELECT id AS instance_id, status, 'owner' AS role, NULL::uuid AS grant_id \
           FROM instances WHERE owner = $1 \
         UNION ALL \
         SELECT g.instance_id, i.status, g.role, g.id FROM grants g \
           JOIN instances i ON i.id = g.instance_id WHERE g.user_id = $1 \
         ORDER BY instance_id, role",
    )
    .bind(user_id)
    .fetch_all(conn)
    .await
}

/// Where an instance's log stands: (revision, log floor). Zero for an instance never changed.
pub async fn revision(conn: &mut PgConnection, instance_id: &str) -> sqlx::Result<(i64, i64)> {
    let row: Option<(i64, i64)> =
        sqlx::query_as("SELECT revision, log_floor FROM grant_revisions WHERE instance_id = $1")
            .bind(instance_id)
            .fetch_optional(conn)
            .await?;
    Ok(row.unwrap_or((0, 0)))
}

/// Every instance's revision, for the in-memory copy.
pub async fn all_revisions(conn: &mut PgConnection) -> sqlx::Result<Vec<(String, i64)>> {
    sqlx::query_as("SELECT instance_id, revision FROM grant_revisions")
        .fetch_all(conn)
        .await
}

/// Appends changes to the instance's log as one run under the next revision, which it
/// answers. The revision row stays locked until the transaction ends, so revisions are
/// gap-free and commit in order; its trigger notifies every replica once per revision.
pub async fn record(
    conn: &mut PgConnection,
    instance_id: &str,
    changes: &[Change],
) -> sqlx::Result<i64> {
    let revision: i64 = sqlx::query_scalar(
        "INSERT INTO grant_revisions (instance_id, revision, log_floor) \
         SELECT $1, revision_floor + 1, revision_floor FROM deployment \
         ON CONFLICT (instance_id) DO UPDATE SET revision = grant_revisions.revision + 1 \
         RETURNING revision",
    )
    .bind(instance_id)
    .fetch_one(&mut *conn)
    .await?;
    let mut ops = Vec::with_capacity(changes.len());
    let mut grant_ids = Vec::with_capacity(changes.len());
    let mut data = Vec::with_capacity(changes.len());
    let mut owners = Vec::with_capacity(changes.len());
    for change in changes {
        let (op, grant_id, grant, owner) = match change {
            Change::Added(g) => ("added", Some(g.id), Some(g), None),
            Change::Updated(g) => ("updated", Some(g.id), Some(g), None),
            Change::Removed(id) => ("removed", Some(*id), None, None),
            Change::Owner(o) => ("owner", None, None, Some(o.clone())),
        };
        ops.push(op);
        grant_ids.push(grant_id);
        data.push(grant.map(|g| g.to_json().to_string()));
        owners.push(owner);
    }
    sqlx::query(
        "INSERT INTO grant_changes (instance_id, revision, seq, op, grant_id, grant_data, owner) \
         SELECT $1, $2, c.seq - 1, c.op, c.grant_id, c.grant_data::jsonb, c.owner \
         FROM UNNEST($3::text[], $4::uuid[], $5::text[], $6::text[]) \
           WITH ORDINALITY AS c(op, grant_id, grant_data, owner, seq)",
    )
    .bind(instance_id)
    .bind(revision)
    .bind(&ops)
    .bind(&grant_ids)
    .bind(&data)
    .bind(&owners)
    .execute(conn)
    .await?;
    Ok(revision)
}

/// Forgets all but the last `kept` changes of an instance (call after [`record`], in its
/// transaction).
pub async fn prune(
    conn: &mut PgConnection,
    instance_id: &str,
    revision: i64,
    kept: i64,
) -> sqlx::Result<()> {
    let floor = revision - kept;
    if floor <= 0 {
        return Ok(());
    }
    let moved = sqlx::query(
        "UPDATE grant_revisions SET log_floor = $2 WHERE instance_id = $1 AND log_floor < $2",
    )
    .bind(instance_id)
    .bind(floor)
    .execute(&mut *conn)
    .await?;
    if moved.rows_affected() > 0 {
        sqlx::query("DELETE FROM grant_changes WHERE instance_id = $1 AND revision <= $2")
            .bind(instance_id)
            .bind(floor)
            .execute(conn)
            .await?;
    }
    Ok(())
}

#[derive(sqlx::FromRow)]
struct ChangeRow {
    op: String,
    grant_id: Option<Uuid>,
    grant_data: Option<serde_json::Value>,
    owner: Option<String>,
}

/// The changes after revision `after` up to `upto`, in order.
pub async fn changes(
    conn: &mut PgConnection,
    instance_id: &str,
    after: i64,
    upto: i64,
) -> anyhow::Result<Vec<Change>> {
    let rows: Vec<ChangeRow> = sqlx::query_as(
        "SELECT op, grant_id, grant_data, owner FROM grant_changes \
         WHERE instance_id = $1 AND revision > $2 AND revision <= $3 ORDER BY revision, seq",
    )
    .bind(instance_id)
    .bind(after)
    .bind(upto)
    .fetch_all(conn)
    .await?;
    rows.into_iter()
        .map(|r| {
            let grant = || -> anyhow::Result<Grant> {
                Ok(serde_json::from_value(r.grant_data.clone().ok_or_else(
                    || anyhow::anyhow!("change without grant data"),
                )?)?)
            };
            Ok(match (r.op.as_str(), r.grant_id, &r.owner) {
                ("added", _, _) => Change::Added(grant()?),
                ("updated", _, _) => Change::Updated(grant()?),
                ("removed", Some(id), _) => Change::Removed(id),
                ("owner", _, Some(o)) => Change::Owner(o.clone()),
                (op, _, _) => anyhow::bail!("unreadable change '{op}' in the grant log"),
            })
        })
        .collect()
}

/// Moves every instance's revision (and its log floor: no delta reaches across) to at least
/// `at_least`, past every revision handed out before; answers the revision they now share.
pub async fn jump_revisions(conn: &mut PgConnection, at_least: i64) -> sqlx::Result<i64> {
    let top: Option<i64> = sqlx::query_scalar("SELECT max(revision) FROM grant_revisions")
        .fetch_one(&mut *conn)
        .await?;
    let to = at_least.max(top.unwrap_or(0) + 1);
    sqlx::query(
        "INSERT INTO grant_revisions (instance_id, revision, log_floor) \
         SELECT id, $1, $1 FROM instances \
         ON CONFLICT (instance_id) DO UPDATE SET revision = $1, log_floor = $1",
    )
    .bind(to)
    .execute(&mut *conn)
    .await?;
    // Instances whose revisions start later (made after the restore) start above it too.
    sqlx::query("UPDATE deployment SET revision_floor = $1")
        .bind(to)
        .execute(conn)
        .await?;
    Ok(to)
}

/// Whether any instance's grants ever changed.
pub async fn any_revision(conn: &mut PgConnection) -> sqlx::Result<bool> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM grant_revisions)")
        .fetch_one(conn)
        .await
}
