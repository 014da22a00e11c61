//! `[dpop]` (`AUTHZ_DPOP_*`): DPoP at the authorization server (RFC 9449), the section read by
//! `policy::dpop` (which re-exports it from its old path).

use super::table::section;

section! {
    /// DPoP, RFC 9449.
    #[serde(default, deny_unknown_fields)]
    pub struct DpopConfig at "dpop" {
        /// Accept DPoP proofs at `/token` and bind the access token (`cnf.jkt`, token_type
        /// DPoP) and a public client's refresh token to the proof's key; false ignores DPoP
        /// headers (Bearer only).
        enabled: bool = true, was ["AUTHZ_DPOP"];
        /// Require a server nonce in every proof at `/token` (`use_dpop_nonce` + `DPoP-Nonce`);
        /// nonces are MACs of the time window under the master key, so every replica accepts
        /// them.
        nonce: bool = false;
        /// A nonce's window; the previous window's nonce is accepted too, so a nonce lives
        /// between one and two windows.
        nonce_secs: i64 = 300, range 30..=86_400;
        /// How far a proof's `iat` may be from now, either way.
        iat_window_secs: i64 = 60, range 5..=600;
        /// The most live proof `jti`s remembered in this process (an entry lives until its
        /// proof's `iat` + the `iat` window). Full: new proofs are refused (`use_dpop_nonce`
        /// with nonces on, else 503 + `Retry-After`), a live entry is never dropped. With
        /// `redis_url` the `jti`s are kept in Redis (shared by every replica; give Redis a
        /// non-evicting memory policy) and this cache only stands in while Redis does not
        /// answer.
        replay_cache: usize = 100_000, range 1000..=(i64::MAX);
    }
}
