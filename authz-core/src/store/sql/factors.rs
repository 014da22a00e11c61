//! What a change of a user's factors does inside the transaction that makes it (a password
//! reset, disabling, a two-factor reset, a passkey added or removed), shared by the user,
//! two-factor and passkey tables.

use crate::error::Result;

/// A second factor of `user_id` goes (in `tx`): the epoch sessions are stamped with moves on,
/// so a sign-in that read the user before gets no session (issue 24, second review F1/F2).
pub(super) async fn bump_factors_epoch(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    user_id: &str,
) -> Result<()> {
    sqlx::query("UPDATE users SET factors_epoch = factors_epoch + 1 WHERE id = $1")
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Delete every passkey of `user_id` inside `tx` (a remedy's transaction: a password reset,
/// disabling, a two-factor reset); how many went.
pub(super) async fn delete_passkeys(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    user_id: &str,
) -> Result<u64> {
    let r = sqlx::query("DELETE FROM passkeys WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    Ok(r.rows_affected())
}
