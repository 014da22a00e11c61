//! Storage: narrow traits keyed by id or token hash (after fosite's `handler/oauth2/storage.go`),
//! and one SQL implementation (`SqlStore`) that runs on SQLite and PostgreSQL.
//!
//! Secrets never reach storage in the clear: client secrets and refresh tokens are stored as
//! SHA-256 hashes, passwords as argon2id PHC strings, private keys AES-256-GCM encrypted.

mod account;
mod client_cache;
mod dashboard;
mod device;
mod federation;
mod id_jag;
mod model;
mod par;
mod passkeys;
mod signin;
mod sql;

use async_trait::async_trait;

pub use account::{AccountStore, ConsentRecord};
pub use client_cache::{ClientCache, Freshness};
pub use dashboard::*;
pub use device::{DeviceAuthorization, DeviceStatus, DeviceStore, PollOutcome};
pub use federation::{FederatedIdentity, FederationStore, SealedUpstreamTokens, UpstreamLogin};
pub use id_jag::{IdJagLink, IdJagLinkStore};
pub use model::*;
pub use par::{ParStore, PushedRequest};
pub use passkeys::{PasskeyStore, StoredPasskey};
pub use signin::{PendingSignIn, PendingSignInStore};
pub use sql::{Backend, SqlStore};

use crate::error::Result;

/// OAuth clients.
/// The counter of live self-registered clients (RFC 7591), kept with them.
pub(crate) const DYNAMIC_CLIENTS: &str = "dynamic_clients";

#[async_trait]
pub trait ClientStore: Send + Sync {
    async fn create_client(&self, client: &Client) -> Result<()>;
    /// Create a client only while the counter `counter` is below `cap`, raising it in the same
    /// transaction; `false` at the cap (nothing created).
    async fn create_client_within(&self, client: &Client, counter: &str, cap: i64) -> Result<bool>;
    /// Create a client on behalf of the browser session `sid` of the client's owner: the
    /// session's row first (the lock a password reset or disabling takes to end it), so either
    /// the remedy sees this client or this sees the session ended; `false` (nothing created)
    /// when the session is not live.
    async fn create_client_in_session(&self, client: &Client, sid: &str) -> Result<bool>;
    async fn get_client(&self, id: &str) -> Result<Option<Client>>;
    /// Store what a metadata document says (insert, or replace a metadata-document row's
    /// settings and freshness); `false` when a row of another kind holds the id.
    async fn put_metadata_client(&self, client: &Client) -> Result<bool>;
    /// Record that `id` got tokens at `now` (self-registered and metadata-document clients;
    /// at most hourly).
    async fn touch_client(&self, id: &str, now: i64) -> Result<()>;
    /// Self-registered clients never used and created before `unused_before`, or last used
    /// before `idle_before` with no live refresh token left at `now`.
    async fn prunable_clients(
        &self,
        unused_before: i64,
        idle_before: i64,
        now: i64,
    ) -> Result<Vec<Client>>;
    /// Spend a `private_key_jwt` assertion's `jti` (hashed, per client, until `expires_at`),
    /// atomically; `false` when it was already used (a replay).
    async fn use_client_assertion(
        &self,
        client_id: &str,
        jti_hash: &str,
        expires_at: i64,
    ) -> Result<bool>;
    /// Forget spent assertions that expired before `ts` (housekeeping: they cannot be
    /// replayed any more).
    async fn delete_client_assertions_before(&self, ts: i64) -> Result<u64>;
    async fn list_clients(&self) -> Result<Vec<Client>>;
    /// Replace the secret hash; `false` when the client does not exist.
    async fn set_client_secret(&self, id: &str, secret_hash: &str, now: i64) -> Result<bool>;
    /// Delete the client and everything issued to it; `false` when it did not exist.
    async fn delete_client(&self, id: &str) -> Result<bool>;
    /// API keys of a user, newest first.
    async fn list_clients_owned_by(&self, owner_id: &str) -> Result<Vec<Client>>;
    /// Mark a client revoked; `false` when it was already revoked or does not exist.
    async fn revoke_client(&self, id: &str, now: i64) -> Result<bool>;
}

/// Users (resource owners).
#[async_trait]
pub trait UserStore: Send + Sync {
    async fn create_user(&self, user: &User) -> Result<()>;
    async fn get_user(&self, id: &str) -> Result<Option<User>>;
    async fn get_user_by_username(&self, username: &str) -> Result<Option<User>>;
    async fn list_users(&self) -> Result<Vec<User>>;
    /// Up to `limit` users whose email address is `email`, ignoring ASCII case (an index read).
    async fn users_with_email(&self, email: &str, limit: i64) -> Result<Vec<User>>;
    async fn set_user_roles(&self, id: &str, roles: &[String], now: i64) -> Result<bool>;
    /// Disable a user and, in the same transaction, remove their passkeys, end their sessions
    /// and sign-ins in progress
    /// and revoke their refresh tokens (serialised with rotation on the session rows, so no
    /// successor escapes).
    async fn disable_user(&self, id: &str, now: i64) -> Result<AccountRevocation>;
    async fn enable_user(&self, id: &str, now: i64) -> Result<bool>;
    /// Set a new password hash and mark the credentials changed at `now`; in the same
    /// transaction end every session and sign-in in progress, revoke every refresh token,
    /// (`revoke_api_keys`) every API key and (`remove_passkeys`) every passkey of the user.
    /// With `replaces`, only if the password hash is still that one (`found: false` and
    /// nothing changed otherwise).
    async fn reset_credentials(
        &self,
        id: &str,
        new: &NewCredentials<'_>,
        now: i64,
    ) -> Result<AccountRevocation>;
    /// Set (or clear) the user's display name (from an upstream provider or the directory).
    async fn set_user_display_name(&self, id: &str, name: Option<&str>, now: i64) -> Result<bool>;
    async fn set_user_email(&self, id: &str, email: Option<&str>, now: i64) -> Result<bool>;
}

/// A password change: the new hash, whether the user's API keys go too (an administrator's
/// reset), whether their passkeys go too (an administrator's reset, or the user asked),
/// whether the user must choose another at the next sign-in, and the hash it replaces (the
/// user's own change: the password they proved; `None`: whatever it is).
#[derive(Debug, Clone, Copy)]
pub struct NewCredentials<'a> {
    pub password_hash: &'a str,
    pub revoke_api_keys: bool,
    pub remove_passkeys: bool,
    pub change_required: bool,
    pub replaces: Option<&'a str>,
}

/// What ending a user's grants took with it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountRevocation {
    /// `false` when the user does not exist.
    pub found: bool,
    pub sessions_ended: u64,
    pub refresh_tokens_revoked: u64,
    /// Ids of the API keys revoked (so client caches can drop them).
    pub api_keys_revoked: Vec<String>,
    pub passkeys_removed: u64,
    /// Linked upstream identities removed (a reset that removes passkeys removes them too).
    pub identities_unlinked: u64,
    /// The password hash now set, when this was a password change (`admin::change_password`
    /// fills it): what the replacement session of the user's own change is stamped with.
    pub password_hash: Option<String>,
}

/// One rotation of a refresh token (RFC 9700 §4.14.2), carried out atomically by the store.
#[derive(Debug)]
pub struct Rotation<'a> {
    /// The presented token, as read before (its `sid` and `user_id` name the grant to lock).
    pub old: &'a RefreshTokenRecord,
    pub successor: &'a RefreshTokenRecord,
    /// The successor token sealed under the master key (AAD: the old token's hash), kept on
    /// the old row for the idempotent retry window; `None` when the window is off.
    pub sealed_successor: Option<&'a [u8]>,
    /// A used token whose `used_at` is at or after this is a retry, answered with its
    /// successor; `None`: every reuse revokes the family.
    pub retry_since: Option<i64>,
    pub now: i64,
}

/// Outcome of presenting a refresh token for rotation.
#[derive(Debug)]
pub enum RotateOutcome {
    /// The token was live: it is now used, and its successor is stored.
    Rotated,
    /// No such token.
    NotFound,
    /// The token was revoked, or its grant ended (session logged out, user disabled).
    GrantEnded,
    /// The token was used moments ago by this client and its successor is still unused: the
    /// same successor (sealed) is the answer, and the family stays linear.
    Retry { sealed_successor: Vec<u8> },
    /// The token had already been used: the family is now revoked (RFC 9700 §4.14.2).
    Reused(Box<RefreshTokenRecord>),
}

/// Refresh tokens, keyed by the SHA-256 of the token; rotated within a family. Every write
/// that can race with a logout takes the grant's session row first (an UPDATE), so rotation,
/// logout and revocation of one grant are serialised on both engines.
#[async_trait]
pub trait RefreshTokenStore: Send + Sync {
    /// Store the first token of a family; `false` (nothing stored) when its session has ended.
    async fn create_refresh_token(&self, record: &RefreshTokenRecord) -> Result<bool>;
    async fn get_refresh_token(&self, token_hash: &str) -> Result<Option<RefreshTokenRecord>>;
    /// Atomically: lock the grant, mark the old token used and store the successor — or answer
    /// a retry, or report reuse and revoke the whole family. Of two concurrent first uses
    /// exactly one rotates.
    async fn rotate_refresh_token(&self, rotation: &Rotation<'_>) -> Result<RotateOutcome>;
    /// Revoke every live token of a family; returns how many were revoked.
    async fn revoke_refresh_family(&self, family_id: &str, now: i64) -> Result<u64>;
    /// Delete tokens whose family ended before `ts` (housekeeping).
    async fn delete_refresh_tokens_ended_before(&self, ts: i64) -> Result<u64>;
    /// Erase sealed successors of tokens used before `ts` (their retry window has passed).
    async fn erase_retry_successors(&self, used_before: i64) -> Result<u64>;
}

/// Browser sessions, keyed by the SHA-256 of the cookie value.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Store `session` only while its user is enabled and still has `password_hash` (the
    /// credential state its sign-in read): one compare-and-insert that, on PostgreSQL, takes a
    /// share lock on the user row, so a remedy (which updates that row first, then ends the
    /// sessions) either sees this session and ends it, or makes this find nothing. `false`
    /// when refused (nothing stored).
    async fn create_session(
        &self,
        session: &Session,
        password_hash: &str,
        factors_epoch: i64,
    ) -> Result<bool>;
    /// A session that has not ended (expiry is the caller's check, against its clock).
    async fn get_session(&self, id_hash: &str) -> Result<Option<Session>>;
    async fn get_session_by_sid(&self, sid: &str) -> Result<Option<Session>>;
    async fn touch_session(&self, id_hash: &str, now: i64) -> Result<()>;
    /// End a session and revoke every refresh token issued through it, in one transaction.
    async fn end_session(&self, sid: &str, now: i64) -> Result<SessionEnd>;
    /// Revoke one client's grant within a session (RFC 7009): its refresh tokens, and a record
    /// that refuses its access tokens issued until `now` (kept until `keep_until`).
    async fn revoke_grant(
        &self,
        sid: &str,
        client_id: &str,
        now: i64,
        keep_until: i64,
    ) -> Result<u64>;
    /// The session `sid` and whether `client_id`'s grant in it was revoked.
    async fn grant_status(&self, sid: &str, client_id: &str) -> Result<Option<GrantStatus>>;
    /// Delete sessions that ended or expired before `ts`, and expired grant revocations.
    async fn delete_sessions_before(&self, ts: i64) -> Result<u64>;
}

/// What ending a session took with it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionEnd {
    /// `false` when it had already ended or never existed.
    pub ended: bool,
    pub refresh_tokens_revoked: u64,
}

/// A grant's standing: its session, and when (if ever) this client's grant in it was revoked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantStatus {
    pub session: Session,
    pub grant_revoked_at: Option<i64>,
}

/// Outcome of redeeming an authorization code.
#[derive(Debug)]
pub enum RedeemOutcome {
    /// First use: the code is now spent.
    Redeemed(Box<AuthCode>),
    NotFound,
    /// Already spent (RFC 6749 §4.1.2: the AS should revoke what it issued).
    Replayed(Box<AuthCode>),
}

/// Authorization codes, keyed by the SHA-256 of the code; single use.
#[async_trait]
pub trait AuthCodeStore: Send + Sync {
    async fn create_code(&self, code: &AuthCode) -> Result<()>;
    /// Atomically spend the code: of two concurrent redemptions at most one is `Redeemed`.
    async fn redeem_code(&self, code_hash: &str, now: i64) -> Result<RedeemOutcome>;
    /// Remember the refresh family issued from a code.
    async fn set_code_family(&self, code_hash: &str, family_id: &str) -> Result<()>;
    async fn delete_codes_expired_before(&self, ts: i64) -> Result<u64>;
}

/// Remembered consent: the scope set a user approved for a client and one resource
/// (RFC 8707 §2.2: a grant is for the resource it was asked for).
#[async_trait]
pub trait ConsentStore: Send + Sync {
    async fn get_consent(
        &self,
        user_id: &str,
        client_id: &str,
        resource: &str,
    ) -> Result<Option<String>>;
    async fn put_consent(
        &self,
        user_id: &str,
        client_id: &str,
        resource: &str,
        scope: &str,
        now: i64,
    ) -> Result<()>;
}

/// Sign-in attempts per username (known or not). Every attempt is counted atomically before
/// the password is checked, so N concurrent attempts count N.
#[async_trait]
pub trait ThrottleStore: Send + Sync {
    async fn get_throttle(&self, username_key: &str) -> Result<Option<LoginThrottle>>;
    /// Count one attempt (`UPDATE … SET failures = failures + 1 … RETURNING`): a window older
    /// than `window_secs` starts over; while locked nothing is counted. Returns the new state.
    async fn count_attempt(
        &self,
        username_key: &str,
        now: i64,
        window_secs: i64,
    ) -> Result<LoginThrottle>;
    /// Lock until `until` unless already locked (of concurrent callers one wins): the count
    /// starts over and `lockouts` goes up. The new state when this call locked.
    async fn lock_throttle(
        &self,
        username_key: &str,
        now: i64,
        until: i64,
    ) -> Result<Option<LoginThrottle>>;
    async fn clear_throttle(&self, username_key: &str) -> Result<()>;
}

/// A user's TOTP enrolment as stored (the secret still sealed).
#[derive(Debug, Clone)]
pub struct StoredTotp {
    pub secret_enc: Vec<u8>,
    pub confirmed_at: Option<i64>,
    pub last_step: Option<i64>,
}

/// The TOTP second factor and recovery codes, keyed by user.
#[async_trait]
pub trait TwoFactorStore: Send + Sync {
    /// Start (or restart) an enrolment: a new sealed secret, not active until confirmed; any
    /// earlier enrolment and recovery codes of the user go.
    async fn begin_totp(&self, user_id: &str, secret_enc: &[u8], now: i64) -> Result<()>;
    async fn get_totp(&self, user_id: &str) -> Result<Option<StoredTotp>>;
    /// Spend `step` for the user, atomically: `false` when a step at or after it was already
    /// used (a replayed or older code). Confirms a pending enrolment.
    async fn spend_totp_step(&self, user_id: &str, step: i64, now: i64) -> Result<bool>;
    /// Replace the user's recovery codes with these hashes.
    async fn set_recovery_codes(&self, user_id: &str, hashes: &[String]) -> Result<()>;
    /// Spend one recovery code, atomically: `false` when unknown or already used.
    async fn spend_recovery_code(&self, user_id: &str, hash: &str, now: i64) -> Result<bool>;
    async fn recovery_codes_left(&self, user_id: &str) -> Result<i64>;
    /// Turn the second factor off: the enrolment and the recovery codes go, the user's
    /// sign-ins in progress end, and with `admin_reset_at` (an administrator's reset, at that
    /// time) every session and refresh token of the user ends and every passkey goes — a
    /// session signed in with a removed factor must not outlive it — in the same transaction.
    async fn remove_totp(
        &self,
        user_id: &str,
        admin_reset_at: Option<i64>,
    ) -> Result<SecondFactorsRemoved>;
}

/// What turning the second factor off removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SecondFactorsRemoved {
    /// A TOTP enrolment (confirmed or not).
    pub totp: bool,
    pub passkeys: u64,
    /// The sessions and refresh tokens ended with them (an administrator's reset).
    pub ended: GrantsEnded,
}

/// The sessions and refresh tokens a remedy ended, in its own transaction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GrantsEnded {
    pub sessions_ended: u64,
    pub refresh_tokens_revoked: u64,
}

/// A security alert to queue for one webhook (`crate::events::alerts`).
#[derive(Debug, Clone)]
pub struct QueuedAlert {
    pub id: String,
    /// Index of the webhook in the configuration.
    pub webhook: i64,
    pub body: String,
    pub created_at: i64,
}

/// A queued alert due for delivery.
#[derive(Debug, Clone)]
pub struct WaitingAlert {
    pub id: String,
    pub webhook: i64,
    pub body: String,
    pub attempts: i64,
}

/// The persisted, bounded queue of security alerts.
#[async_trait]
pub trait AlertStore: Send + Sync {
    /// Queue an alert; beyond `max_queued` waiting alerts the oldest are dropped.
    async fn queue_alert(&self, alert: &QueuedAlert, max_queued: i64) -> Result<()>;
    /// Alerts whose next attempt is due at `now`, oldest first.
    async fn due_alerts(&self, now: i64, limit: u32) -> Result<Vec<WaitingAlert>>;
    /// Take an alert for delivery until `lease_until`; `false` when another took it first.
    async fn claim_alert(&self, id: &str, now: i64, lease_until: i64) -> Result<bool>;
    async fn retry_alert(&self, id: &str, attempts: i64, next_attempt_at: i64) -> Result<()>;
    async fn delete_alert(&self, id: &str) -> Result<()>;
}

/// A signed security event waiting for one receiver (`crate::events::ssf`).
#[derive(Debug, Clone)]
pub struct QueuedSet {
    pub receiver: String,
    pub jti: String,
    pub jwt: String,
    pub created_at: i64,
}

/// A receiver's refusal of one SET (RFC 8936 §2.4 `setErrs`), with its error code (RFC 8935
/// §2.4).
#[derive(Debug, Clone)]
pub struct SetRefusal {
    pub jti: String,
    pub err: String,
}

/// A SET given up on after too many refusals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DroppedSet {
    pub jti: String,
    pub err: String,
    pub refusals: i64,
}

/// Security events queued per receiver until acknowledged (RFC 8936).
#[async_trait]
pub trait SignalStore: Send + Sync {
    /// Queue the SETs, all or none.
    async fn queue_sets(&self, sets: &[QueuedSet]) -> Result<()>;
    /// Acknowledge `jtis` for `receiver` (unknown or already acknowledged ones are ignored).
    async fn ack_sets(&self, receiver: &str, jtis: &[String], now: i64) -> Result<u64>;
    /// The receiver could not process these SETs (RFC 8936 `setErrs`, with the error code):
    /// each is counted and delivered again `pause_step` × (its refusals) seconds after `now`,
    /// or, refused `max_refusals` times now, acknowledged. The SETs given up on this way (each
    /// exactly once, whichever replica heard the last refusal); unknown or acknowledged ones
    /// are ignored.
    async fn refuse_sets(
        &self,
        receiver: &str,
        refusals: &[SetRefusal],
        now: i64,
        pause_step: i64,
        max_refusals: i64,
    ) -> Result<Vec<DroppedSet>>;
    /// The oldest unacknowledged SETs of `receiver` due at `now` (not waiting after a
    /// refusal), at most `limit`: (jti, SET).
    async fn pending_sets(
        &self,
        receiver: &str,
        limit: u32,
        now: i64,
    ) -> Result<Vec<(String, String)>>;
    /// Replace a queued SET by the same event signed again (its key was withdrawn).
    async fn replace_set(&self, receiver: &str, jti: &str, jwt: &str) -> Result<()>;
    /// Forget SETs acknowledged before `acked_before` and any queued before `queued_before`.
    async fn delete_sets_before(&self, acked_before: i64, queued_before: i64) -> Result<u64>;
}

/// Signing keys (private halves encrypted).
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// Store a key as it is (a `Next` key waits for its `activate_at`).
    async fn insert_key(&self, key: &StoredKey) -> Result<()>;
    /// Keys published at `now`: pending, active, and retired ones whose tokens may live.
    async fn published_keys(&self, now: i64) -> Result<Vec<StoredKey>>;
    async fn all_keys(&self) -> Result<Vec<StoredKey>>;
    /// Make `new_key` the only active key of its purpose at once; the others of that purpose
    /// are retired, published until `publish_until`, and pending ones dropped (they never
    /// signed). One transaction.
    async fn activate_key(&self, new_key: &StoredKey, publish_until: i64) -> Result<()>;
    /// Promote pending keys whose `activate_at` has come, retiring the active key of their
    /// purpose (published until `publish_until`). Idempotent; safe for concurrent callers.
    async fn promote_due_keys(&self, now: i64, publish_until: i64) -> Result<u64>;
    /// Retire every active key of `purpose`.
    async fn retire_keys(&self, purpose: KeyPurpose, now: i64, publish_until: i64) -> Result<u64>;
    /// Delete retired keys whose publication window has ended.
    async fn prune_keys(&self, now: i64) -> Result<u64>;
    /// Withdraw a key that is not active (pending or retired; `authz keys revoke`): never
    /// published again, its private half wiped. `false` when there is no such key (unknown,
    /// active, or withdrawn already).
    async fn withdraw_key(&self, kid: &str, now: i64) -> Result<bool>;
}

/// The audit log (append-only).
#[async_trait]
pub trait AuditStore: Send + Sync {
    async fn append(&self, event: &AuditEvent) -> Result<()>;
    /// Append several events in one transaction.
    async fn append_all(&self, events: &[AuditEvent]) -> Result<()>;
    /// Append what the resource server `reporter` (its client id) reported, in one
    /// transaction; an event whose key was recorded before (a report retried after its answer
    /// was lost) is skipped, and so is a key's second event within `events`. The number
    /// appended.
    async fn append_reported(&self, reporter: &str, events: &[Reported], now: i64)
    -> Result<usize>;
    /// Forget the report keys received before `ts`.
    async fn delete_report_keys_before(&self, ts: i64) -> Result<u64>;
    async fn recent(&self, limit: i64) -> Result<Vec<AuditEvent>>;
    async fn delete_before(&self, ts: i64) -> Result<u64>;
}

/// Filters for reading the audit log (all optional), newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub kind: Option<String>,
    pub actor: Option<String>,
    pub outcome: Option<String>,
    pub client: Option<String>,
    /// The user an event is about (`subject`).
    pub subject: Option<String>,
    /// Paging: only events with a smaller id.
    pub before_id: Option<i64>,
    pub limit: i64,
}

/// Counts for the security summary.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SecurityCounts {
    pub logins_succeeded: i64,
    pub logins_failed: i64,
    pub lockouts: i64,
    pub refresh_reuse_detected: i64,
    pub code_replays: i64,
    pub tokens_by_grant: std::collections::BTreeMap<String, i64>,
    pub grants_revoked: i64,
    pub active_sessions: i64,
    pub active_api_keys: i64,
    pub published_signing_keys: i64,
}

/// Reports over the stored data (audit queries, security summary).
#[async_trait]
pub trait ReportStore: Send + Sync {
    async fn query_audit(&self, q: &AuditQuery) -> Result<Vec<AuditEvent>>;
    /// Counts of events since `since`, and of live things at `now`.
    async fn security_counts(&self, since: i64, now: i64) -> Result<SecurityCounts>;
}

/// Everything the server stores, as one object behind the narrow traits.
#[async_trait]
pub trait Store:
    ClientStore
    + UserStore
    + RefreshTokenStore
    + SessionStore
    + AuthCodeStore
    + ConsentStore
    + ThrottleStore
    + KeyStore
    + AuditStore
    + ReportStore
    + SignalStore
    + AlertStore
    + TwoFactorStore
    + AccountStore
    + DashboardStore
    + ParStore
    + DeviceStore
    + PasskeyStore
    + PendingSignInStore
    + IdJagLinkStore
    + FederationStore
{
    /// Cheap probe for `/readyz`: the database answers.
    async fn ping(&self) -> Result<()>;
    /// Close the connection pool: every later query fails (shutdown).
    async fn close(&self);
    /// Connections open in the pool, and how many of them are idle (metrics).
    fn pool_usage(&self) -> (u32, usize) {
        (0, 0)
    }
}
