//! Device authorizations (RFC 8628): stored by the hashes of the device code and of the user
//! code; every state change is one conditional `UPDATE … RETURNING`.

use async_trait::async_trait;

use crate::error::Result;

/// A device authorization, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceAuthorization {
    /// SHA-256 hex of the device code.
    pub device_hash: String,
    /// HMAC-SHA256 hex of the normalised user code (`protocol::device::user_code_hash`).
    pub user_code_hash: String,
    pub client_id: String,
    pub scope: String,
    pub resource: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub interval_secs: i64,
    pub last_poll_at: Option<i64>,
    pub status: DeviceStatus,
    pub user_id: Option<String>,
    pub decided_at: Option<i64>,
    /// How the approving user had signed in (RFC 8176), set with the decision.
    pub amr: Vec<String>,
    /// The browser session that decided (set with the decision): the tokens are issued only
    /// while it is live, as an authorization code is redeemed only while its session is.
    pub approving_sid: Option<String>,
}

/// Where a device authorization stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceStatus {
    Pending,
    Approved,
    Denied,
    /// Approved, and the tokens were handed out (once).
    Issued,
}

impl DeviceStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Issued => "issued",
        }
    }
}

impl std::str::FromStr for DeviceStatus {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "pending" => Ok(Self::Pending),
            "approved" => Ok(Self::Approved),
            "denied" => Ok(Self::Denied),
            "issued" => Ok(Self::Issued),
            o => Err(format!("unknown device status {o:?}")),
        }
    }
}

/// What one poll of the token endpoint was answered (RFC 8628 §3.5), decided and recorded
/// by the store in the same statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollOutcome {
    /// No such device code for this client.
    NotFound,
    Expired,
    /// Polled sooner than the interval: it is now `interval_secs` (5 s longer, §3.5).
    SlowDown {
        interval_secs: i64,
    },
    Pending,
    Denied,
    /// Tokens were already issued for it.
    AlreadyIssued,
    /// Approved: this poll is the one that gets the tokens (the row is now `issued`).
    Issue(Box<DeviceAuthorization>),
}

#[async_trait]
pub trait DeviceStore: Send + Sync {
    /// Store a new authorization; `Conflict` when the user code hash is taken (retry with
    /// another code).
    async fn create_device_authorization(&self, d: &DeviceAuthorization) -> Result<()>;
    async fn device_by_user_code(
        &self,
        user_code_hash: &str,
    ) -> Result<Option<DeviceAuthorization>>;
    /// Approve or deny a pending, unexpired authorization for `user_id`, from the browser
    /// session `sid`; `false` when it was no longer pending (decided meanwhile, or expired).
    async fn decide_device(
        &self,
        user_code_hash: &str,
        approve: bool,
        user_id: &str,
        sid: &str,
        amr: &[String],
        now: i64,
    ) -> Result<bool>;
    /// Record a poll by `client_id` at `now` and decide its answer atomically: too early
    /// raises the interval by `slow_down_secs`, an approved one becomes `issued`.
    async fn poll_device(
        &self,
        device_hash: &str,
        client_id: &str,
        now: i64,
        slow_down_secs: i64,
    ) -> Result<PollOutcome>;
    /// Forget authorizations that expired before `ts` (housekeeping).
    async fn delete_device_authorizations_before(&self, ts: i64) -> Result<u64>;
}
