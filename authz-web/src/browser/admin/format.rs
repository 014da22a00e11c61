//! Small pure helpers of the admin pages: UTC times as people read them and as
//! `<input type="datetime-local">` sends them, path segments, shortened text, and CSV cells
//! (RFC 4180 quoting; cells a spreadsheet would run as a formula are neutralised, OWASP "CSV
//! Injection").
//!
//! Times are unix seconds from the injected clock; the calendar arithmetic is
//! `console::time`'s (proleptic Gregorian, UTC, no leap seconds).

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::console::time::{civil_from_days, days_from_civil};
pub(crate) use crate::console::time::{utc as utc_minute, utc_or_dash as utc_minute_or_dash};

const DAY: i64 = 86_400;

/// (year, month, day, hour, minute, second) of `ts` in UTC.
fn parts(ts: i64) -> (i64, u32, u32, i64, i64, i64) {
    let (y, mo, d) = civil_from_days(ts.div_euclid(DAY));
    let secs = ts.rem_euclid(DAY);
    (y, mo, d, secs / 3600, secs % 3600 / 60, secs % 60)
}

/// `YYYY-MM-DDTHH:MM:SSZ` (RFC 3339, UTC): `<time datetime>` and the CSV export.
pub(crate) fn utc_iso(ts: i64) -> String {
    let (y, mo, d, h, mi, s) = parts(ts);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// The value of a `datetime-local` input for `ts` (UTC), with seconds only when they are not 0.
pub(crate) fn datetime_local(ts: i64) -> String {
    let (y, mo, d, h, mi, s) = parts(ts);
    if s == 0 {
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}")
    } else {
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}")
    }
}

/// Which end of a minute a `datetime-local` value without seconds stands for: a range's start
/// is its first second, a range's end its last, so `to=10:00` includes events at 10:00:30.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Edge {
    Start,
    End,
}

/// A time typed into a filter: unix seconds, or `YYYY-MM-DDTHH:MM[:SS]` (a space or `T`
/// between date and time; a trailing `Z` is allowed), read as UTC. Years 1970 to 9999.
pub(crate) fn parse_time(text: &str, edge: Edge) -> Result<i64, String> {
    let t = text.trim();
    let bad = || {
        format!(
            "{:?} is not a time: use YYYY-MM-DDTHH:MM (UTC) or unix seconds",
            shorten(t, 40)
        )
    };
    if !t.is_empty() && t.len() <= 12 && t.bytes().all(|b| b.is_ascii_digit()) {
        return t.parse::<i64>().map_err(|_| bad());
    }
    let t = t.strip_suffix('Z').unwrap_or(t);
    let b = t.as_bytes();
    if !(b.len() == 16 || b.len() == 19) || !t.is_ascii() {
        return Err(bad());
    }
    let sep_ok = b[4] == b'-'
        && b[7] == b'-'
        && (b[10] == b'T' || b[10] == b' ')
        && b[13] == b':'
        && (b.len() == 16 || b[16] == b':');
    if !sep_ok {
        return Err(bad());
    }
    let field = |from: usize, to: usize| -> Result<i64, String> {
        let s = &t[from..to];
        if s.bytes().all(|c| c.is_ascii_digit()) {
            s.parse::<i64>().map_err(|_| bad())
        } else {
            Err(bad())
        }
    };
    let (y, mo, d, h, mi) = (
        field(0, 4)?,
        field(5, 7)?,
        field(8, 10)?,
        field(11, 13)?,
        field(14, 16)?,
    );
    let s = if b.len() == 19 {
        Some(field(17, 19)?)
    } else {
        None
    };
    let month_days = match mo {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => return Err(bad()),
    };
    let in_range = y >= 1970 && (1..=month_days).contains(&d) && h < 24 && mi < 60;
    if !in_range || s.is_some_and(|s| s >= 60) {
        return Err(bad());
    }
    let (mo, d) = (mo as u32, d as u32);
    let second = match (s, edge) {
        (Some(s), _) => s,
        (None, Edge::Start) => 0,
        (None, Edge::End) => 59,
    };
    Ok(days_from_civil(y, mo, d) * DAY + h * 3600 + mi * 60 + second)
}

/// Characters left as they are in a path segment: RFC 3986 unreserved.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `value` as one path segment (a metadata-document client's id is a URL).
pub(crate) fn segment(value: &str) -> String {
    utf8_percent_encode(value, SEGMENT).to_string()
}

/// At most `max` characters of `text`, with `…` when cut.
pub(crate) fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// One CSV cell: a text a spreadsheet would run as a formula (starting with `=`, `+`, `-`,
/// `@`, tab or carriage return) gets a leading `'`, and a cell holding `"`, `,`, CR or LF is
/// quoted with its quotes doubled (RFC 4180 §2).
pub(crate) fn csv_cell(value: &str) -> String {
    let risky = value.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let value = if risky {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if value.contains(['"', ',', '\r', '\n']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

/// One CSV record, ended by CRLF (RFC 4180 §2).
pub(crate) fn csv_row<S: AsRef<str>>(cells: &[S]) -> String {
    let mut line = cells
        .iter()
        .map(|c| csv_cell(c.as_ref()))
        .collect::<Vec<_>>()
        .join(",");
    line.push_str("\r\n");
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc_times() {
        assert_eq!(utc_minute(0), "1970-01-01 00:00");
        assert_eq!(utc_iso(0), "1970-01-01T00:00:00Z");
        // 2023-11-14 22:13:20 UTC
        assert_eq!(utc_minute(1_700_000_000), "2023-11-14 22:13");
        assert_eq!(utc_iso(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(datetime_local(1_700_000_000), "2023-11-14T22:13:20");
        assert_eq!(datetime_local(1_699_999_980), "2023-11-14T22:13");
        // Leap day and the end of a year.
        assert_eq!(utc_minute(951_782_400), "2000-02-29 00:00");
        assert_eq!(utc_iso(1_704_067_199), "2023-12-31T23:59:59Z");
        assert_eq!(utc_minute(-60), "1969-12-31 23:59");
        assert_eq!(utc_minute_or_dash(None), "—");
        // Every day of 1970..2100 round-trips through the calendar.
        for day in 0..(130 * 366) {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
        }
    }

    #[test]
    fn parses_filter_times() {
        assert_eq!(parse_time("1700000000", Edge::Start), Ok(1_700_000_000));
        assert_eq!(parse_time(" 1700000000 ", Edge::End), Ok(1_700_000_000));
        assert_eq!(
            parse_time("2023-11-14T22:13", Edge::Start),
            Ok(1_699_999_980)
        );
        assert_eq!(parse_time("2023-11-14T22:13", Edge::End), Ok(1_700_000_039));
        assert_eq!(
            parse_time("2023-11-14T22:13:20", Edge::End),
            Ok(1_700_000_000)
        );
        assert_eq!(
            parse_time("2023-11-14 22:13:20Z", Edge::Start),
            Ok(1_700_000_000)
        );
        assert_eq!(parse_time("2000-02-29T00:00", Edge::Start), Ok(951_782_400));
        for ts in [0, 951_782_400, 1_700_000_000, 4_102_444_799] {
            assert_eq!(parse_time(&datetime_local(ts), Edge::Start), Ok(ts));
        }
        for bad in [
            "",
            "yesterday",
            "2023-11-14",
            "2023-13-01T00:00",
            "2023-02-29T00:00",
            "1900-02-28T00:00",
            "2023-11-14T24:00",
            "2023-11-14T22:60",
            "2023-11-14T22:13:60",
            "2023-11-14X22:13",
            "2023-1a-14T22:13",
            "+023-11-14T22:13",
            "2023-11-14T22:13:2",
            "99999999999999",
            "-5",
            "２０２３-11-14T22:13",
        ] {
            let e = parse_time(bad, Edge::Start).expect_err(bad);
            assert!(e.contains("is not a time"), "{bad}: {e}");
        }
        // The message quotes a long input only in part.
        let long = "x".repeat(500);
        assert!(parse_time(&long, Edge::Start).expect_err("long").len() < 120);
    }

    #[test]
    fn csv_quotes_and_neutralises_formulas() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell(""), "");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_cell("cr\rhere"), "\"cr\rhere\"");
        assert_eq!(csv_cell("=1+1"), "'=1+1");
        assert_eq!(csv_cell("+1"), "'+1");
        assert_eq!(csv_cell("-1"), "'-1");
        assert_eq!(csv_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_cell("\tx"), "'\tx");
        assert_eq!(csv_cell("\rx"), "\"'\rx\"");
        assert_eq!(
            csv_cell("=HYPERLINK(\"http://x\",\"y\")"),
            "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\""
        );
        // Not at the start: left alone.
        assert_eq!(csv_cell("a=b"), "a=b");
        assert_eq!(csv_row(&["1", "a,b", "=x"]), "1,\"a,b\",'=x\r\n");
        assert_eq!(csv_row::<&str>(&[]), "\r\n");
    }

    #[test]
    fn segments_and_shortening() {
        assert_eq!(segment("usr_Ab-9.x~"), "usr_Ab-9.x~");
        assert_eq!(
            segment("https://app.example/c.json?a=1"),
            "https%3A%2F%2Fapp.example%2Fc.json%3Fa%3D1"
        );
        assert_eq!(segment("a b/ü"), "a%20b%2F%C3%BC");
        assert_eq!(shorten("abc", 3), "abc");
        assert_eq!(shorten("abcd", 3), "ab…");
        assert_eq!(shorten("äöüß", 2), "ä…");
    }
}
