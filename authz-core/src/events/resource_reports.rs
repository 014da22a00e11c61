//! Reports of resource servers (`POST /resource-events`, served by `authz-web`): the bounds
//! that decide what is kept and for how long.

/// How far back an event's `ts` may lie; older ones are recorded at this bound.
pub const MAX_AGE_SECS: i64 = 7 * 86_400;
/// How long an event's key is remembered (a retry comes within minutes; past `MAX_AGE_SECS`
/// an event is clamped anyway).
pub const KEY_RETENTION_SECS: i64 = MAX_AGE_SECS + 86_400;
