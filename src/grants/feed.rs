//! What an instance polls: the snapshot of its grants, or the changes after a revision it
//! has, read in one repeatable-read transaction at the latest committed revision.

use super::{GrantError, answers::Answer, commands::Commands, delta, ops::Result};
use crate::{
    db,
    domain::{InstanceId, InstanceUnavailable, grant::Snapshot},
};

impl Commands {
    /// The snapshot, or with `since` the delta after it, serialised, and its revision.
    pub(super) async fn read(&self, id: &InstanceId, since: Option<i64>) -> Result<Answer> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        let instance = db::instances::get(&mut tx, id.as_str())
            .await?
            .ok_or_else(|| InstanceUnavailable::not_found(id))?;
        let (revision, floor) = db::grants::revision(&mut tx, id.as_str()).await?;
        let body = match since {
            Some(since) if since > revision => {
                return Err(GrantError::SinceAhead { since, revision });
            }
            Some(since) if since < floor => return Err(GrantError::RevisionGone { since, floor }),
            Some(since) => {
                let changes = db::grants::changes(&mut tx, id.as_str(), since, revision).await?;
                serde_json::to_vec(&delta::fold(id.as_str(), since, revision, &changes))
            }
            None => serde_json::to_vec(&Snapshot {
                instance_id: id.to_string(),
                revision,
                owner: instance.owner,
                grants: db::grants::of_instance(&mut tx, id.as_str()).await?,
            }),
        }
        .map_err(anyhow::Error::from)?;
        tx.commit().await?;
        Ok((revision, body.into()))
    }
}
