//! Times on console pages: UTC, `YYYY-MM-DD HH:MM`, from the unix seconds the store keeps.

/// `ts` (unix seconds) as `YYYY-MM-DD HH:MM` UTC.
pub(crate) fn utc(ts: i64) -> String {
    let (y, m, d) = civil_from_days(ts.div_euclid(86_400));
    let secs = ts.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        secs / 3600,
        secs % 3600 / 60
    )
}

/// An optional time, or a dash.
pub(crate) fn utc_or_dash(ts: Option<i64>) -> String {
    ts.map_or_else(|| "—".to_owned(), utc)
}

pub(crate) use shared::clock::{civil_from_days, days_from_civil};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(utc(0), "1970-01-01 00:00");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00");
        assert_eq!(utc(1_796_083_200 + 3_661), "2026-12-01 01:01");
        assert_eq!(utc(-1), "1969-12-31 23:59");
    }
}
