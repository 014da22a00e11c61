//! OAuth 2.0 error codes and the JSON error body (RFC 6749 §5.2, RFC 6750 §3.1, RFC 8707 §2,
//! RFC 7009, RFC 8693), shared so both servers spell them identically.

use serde::{Deserialize, Serialize};

/// Every error code either server may return. The wire spelling is [`ErrorCode::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// RFC 6749 §5.2: malformed request, missing/duplicate parameter.
    InvalidRequest,
    /// RFC 6749 §5.2: client authentication failed (HTTP 401).
    InvalidClient,
    /// RFC 6749 §5.2: bad, expired or revoked grant (credentials, refresh token, code).
    InvalidGrant,
    /// RFC 6749 §5.2: the client may not use this grant type.
    UnauthorizedClient,
    /// RFC 6749 §5.2: the grant type is not supported at all.
    UnsupportedGrantType,
    /// RFC 6749 §5.2: unknown or forbidden scope.
    InvalidScope,
    /// RFC 8707 §2: unknown or forbidden resource (audience).
    InvalidTarget,
    /// RFC 6749 §4.1.2.1: the resource owner denied the request.
    AccessDenied,
    /// RFC 6750 §3.1: the access token is invalid.
    InvalidToken,
    /// RFC 6750 §3.1: the token lacks a scope the request needs.
    InsufficientScope,
    /// RFC 6749 §4.1.2.1: unexpected condition on the server.
    ServerError,
    /// RFC 6749 §4.1.2.1: overloaded or in maintenance; retry later.
    TemporarilyUnavailable,
    /// RFC 6749 §4.1.2.1: the response type is not supported.
    UnsupportedResponseType,
    /// OIDC Core §3.1.2.6: `prompt=none` but the user must sign in.
    LoginRequired,
    /// OIDC Core §3.1.2.6: `prompt=none` but the user must consent.
    ConsentRequired,
    /// OIDC Core §3.1.2.6: the `request` parameter is not supported.
    RequestNotSupported,
    /// OIDC Core §3.1.2.6, §6.2: the `request_uri` parameter is not supported.
    RequestUriNotSupported,
    /// OIDC Core §3.1.2.6: `prompt=select_account` (or `none`) but no account can be chosen
    /// without asking the user.
    AccountSelectionRequired,
    /// RFC 7591 §3.2.2: a redirect URI is invalid.
    InvalidRedirectUri,
    /// RFC 7591 §3.2.2: some client metadata is invalid.
    InvalidClientMetadata,
    /// RFC 8628 §3.5: the user has not yet approved or denied the device request.
    AuthorizationPending,
    /// RFC 8628 §3.5: polling too fast; the interval is now 5 seconds longer.
    SlowDown,
    /// RFC 8628 §3.5: the device code expired; start a new device authorization.
    ExpiredToken,
    /// RFC 9449 §5, §7.1: the DPoP proof is missing or invalid.
    InvalidDpopProof,
    /// RFC 9449 §8, §9: the server requires a DPoP nonce (sent in the `DPoP-Nonce` header).
    UseDpopNonce,
    /// RFC 9470 §3: the user's authentication behind the token is too old or too weak for
    /// this request (HTTP 401, with `max_age` / `acr_values` in the challenge).
    InsufficientUserAuthentication,
}

impl ErrorCode {
    /// The registered wire value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::InvalidTarget => "invalid_target",
            Self::AccessDenied => "access_denied",
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::LoginRequired => "login_required",
            Self::ConsentRequired => "consent_required",
            Self::RequestNotSupported => "request_not_supported",
            Self::RequestUriNotSupported => "request_uri_not_supported",
            Self::AccountSelectionRequired => "account_selection_required",
            Self::InvalidRedirectUri => "invalid_redirect_uri",
            Self::InvalidClientMetadata => "invalid_client_metadata",
            Self::AuthorizationPending => "authorization_pending",
            Self::SlowDown => "slow_down",
            Self::ExpiredToken => "expired_token",
            Self::InvalidDpopProof => "invalid_dpop_proof",
            Self::UseDpopNonce => "use_dpop_nonce",
            Self::InsufficientUserAuthentication => "insufficient_user_authentication",
        }
    }

    /// The HTTP status that goes with the code on a token-style endpoint.
    pub const fn http_status(self) -> u16 {
        match self {
            Self::InvalidClient | Self::InvalidToken | Self::InsufficientUserAuthentication => 401,
            Self::InsufficientScope => 403,
            // `access_denied` at a token-style endpoint is the device grant's (RFC 8628 §3.5),
            // an RFC 6749 §5.2 error response: 400 like the others.
            Self::ServerError => 500,
            Self::TemporarilyUnavailable => 503,
            _ => 400,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The JSON error body of RFC 6749 §5.2.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    pub error: ErrorCode,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

impl ErrorResponse {
    /// The body for `error`, its description made wire-safe by [`error_description`].
    pub fn new(error: ErrorCode, description: &str) -> Self {
        Self {
            error,
            error_description: Some(error_description(description)),
        }
    }
}

/// Is `c` allowed in `error_description`? RFC 6749 §4.1.2.1 / §5.2 (and RFC 6750 §3): only
/// %x20-21 / %x23-5B / %x5D-7E, i.e. printable ASCII without `"` and `\`.
pub const fn description_char_ok(c: char) -> bool {
    matches!(c, '\u{20}'..='\u{21}' | '\u{23}'..='\u{5B}' | '\u{5D}'..='\u{7E}')
}

/// The one constructor of every `error_description` either server sends (JSON bodies, error
/// redirects, `WWW-Authenticate` challenges): the text mapped into the RFC 6749 §5.2 character
/// set. `§` reads `section`, a double quote becomes a single one, a backslash a slash, a line
/// break a space, and anything else outside the set `?`, so the client always gets a legal,
/// readable description however the text was written or whatever a client sent that it quotes.
pub fn error_description(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            c if description_char_ok(c) => out.push(c),
            '§' => out.push_str("section "),
            '"' | '“' | '”' => out.push('\''),
            '\\' => out.push('/'),
            '\n' | '\r' | '\t' => out.push(' '),
            '—' | '–' => out.push('-'),
            _ => out.push('?'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_spelling_matches_as_str() {
        for code in [
            ErrorCode::InvalidRequest,
            ErrorCode::InvalidClient,
            ErrorCode::InvalidGrant,
            ErrorCode::UnauthorizedClient,
            ErrorCode::UnsupportedGrantType,
            ErrorCode::InvalidScope,
            ErrorCode::InvalidTarget,
            ErrorCode::AccessDenied,
            ErrorCode::InvalidToken,
            ErrorCode::InsufficientScope,
            ErrorCode::ServerError,
            ErrorCode::TemporarilyUnavailable,
            ErrorCode::UnsupportedResponseType,
            ErrorCode::LoginRequired,
            ErrorCode::ConsentRequired,
            ErrorCode::RequestNotSupported,
            ErrorCode::RequestUriNotSupported,
            ErrorCode::AccountSelectionRequired,
            ErrorCode::InvalidRedirectUri,
            ErrorCode::InvalidClientMetadata,
            ErrorCode::AuthorizationPending,
            ErrorCode::SlowDown,
            ErrorCode::ExpiredToken,
            ErrorCode::InvalidDpopProof,
            ErrorCode::UseDpopNonce,
        ] {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }

    #[test]
    fn descriptions_keep_to_the_rfc_6749_character_set() {
        let cases = [
            (
                "code_verifier does not match the code_challenge (RFC 7636 §4.6)",
                "code_verifier does not match the code_challenge (RFC 7636 section 4.6)",
            ),
            (
                "unsupported prompt value \"bogus\"",
                "unsupported prompt value 'bogus'",
            ),
            ("a\\b\nc — d é", "a/b c - d ?"),
            ("plain text stays", "plain text stays"),
        ];
        for (input, want) in cases {
            let got = error_description(input);
            assert_eq!(got, want);
            assert!(got.chars().all(description_char_ok), "{got}");
        }
        // The boundaries of the allowed set.
        for c in [' ', '!', '#', '[', ']', '~'] {
            assert!(description_char_ok(c), "{c:?}");
        }
        for c in ['"', '\\', '\u{7f}', '\u{1f}', '§'] {
            assert!(!description_char_ok(c), "{c:?}");
        }
    }
}
