//! Why a guarded fetch failed (`fetch.rs`), including a refusal by a fetch budget
//! (`budget.rs`).

/// What a host without a public address is told, resolved or not.
const NOT_PUBLIC: &str =
    "the host does not resolve to a public address (this server does not fetch from others)";

/// Why a fetch failed; the text is shown on the error page and recorded in the audit log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("the client_id URL must use https")]
    NotHttps,
    #[error("the client_id URL has no host")]
    NoHost,
    #[error("the URL's host is not a valid host name")]
    BadHost,
    /// The host has no address. Told in the words of `Forbidden`: an outsider must not learn
    /// which internal names exist (a name that resolves to a private address, against one
    /// that does not resolve at all). The log says which.
    #[error("{}", NOT_PUBLIC)]
    Resolve,
    /// The host resolves to an address of this class (loopback, private…): told as
    /// `Resolve` is, the class only logged.
    #[error("{}", NOT_PUBLIC)]
    Forbidden(&'static str),
    #[error("too many metadata fetches from this host; try again in a minute")]
    HostBudget,
    #[error("too many metadata fetches requested from your address; try again in a minute")]
    AddressBudget,
    #[error("too many metadata fetches in progress; try again shortly")]
    Busy,
    #[error("the metadata host did not answer in time")]
    Timeout,
    #[error("the metadata URL redirects (status {0}); redirects are not followed")]
    Redirect(u16),
    #[error("the metadata URL answered HTTP {0}")]
    Status(u16),
    #[error("the metadata document is not application/json")]
    NotJson,
    #[error("the metadata document is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the metadata host could not be reached over TLS: {0}")]
    Transport(String),
}

impl FetchError {
    /// A refusal by a budget: nothing is known about the URL (and nothing should be
    /// remembered about it for other requesters).
    pub(crate) fn is_budget(&self) -> bool {
        matches!(self, Self::HostBudget | Self::AddressBudget | Self::Busy)
    }
}
