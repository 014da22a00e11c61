//! The admin dashboard's data (issue 17): the security summary over the last 24 hours as stat
//! tiles and server-rendered bar charts ([`crate::console::chart`]), each chart with the same numbers
//! as a table for readers who cannot see it.
//!
//! The window is 24 hourly buckets ending with the current hour (UTC): it starts at the top
//! of the hour 23 hours before the current one, so "now" is always in the last bucket. The
//! charts are built from the store's per-hour counts by pure functions of those counts and
//! `now` (the injected clock), so tests can feed known counts and check the bars.

use authz_core::events::kinds;
use std::collections::BTreeMap;

use crate::console::chart::{BarChart, Series};
use authz_core::error::Result;
use authz_core::store::{BucketCount, GrantType, Store};

/// One bucket of the hourly charts.
pub const HOUR: i64 = 3600;
/// Buckets in the window.
pub(crate) const HOURS: i64 = 24;

pub(crate) const SIGNED_IN: &str = kinds::LOGIN_SUCCEEDED;
pub(crate) const SIGN_IN_FAILED: &str = kinds::LOGIN_FAILED;
pub(crate) const LOCKED: &str = kinds::LOGIN_LOCKED;
pub(crate) const REFRESH_REUSE: &str = kinds::REFRESH_REUSE_DETECTED;
pub(crate) const CODE_REPLAY: &str = kinds::CODE_REPLAYED;
/// A tool call the MCP server refused (reported into this audit log by the MCP server).
pub const MCP_TOOL_DENIED: &str = kinds::MCP_TOOL_DENIED;

/// The kinds the hourly charts count.
pub(crate) const CHART_KINDS: [&str; 6] = [
    SIGNED_IN,
    SIGN_IN_FAILED,
    LOCKED,
    REFRESH_REUSE,
    CODE_REPLAY,
    MCP_TOOL_DENIED,
];

/// The hourly series: (audit kind, name, CSS modifier of the bars).
const SIGN_IN_SERIES: [(&str, &str, &str); 2] = [
    (SIGNED_IN, "Succeeded", "ok"),
    (SIGN_IN_FAILED, "Failed", "bad"),
];
const SECURITY_SERIES: [(&str, &str, &str); 4] = [
    (LOCKED, "Lockouts", "warn"),
    (REFRESH_REUSE, "Refresh token reuse", "bad"),
    (CODE_REPLAY, "Code replays", "alt"),
    (MCP_TOOL_DENIED, "Denied MCP tool calls", "info"),
];

/// The start of the hour `ts` falls in.
pub(crate) fn hour_start(ts: i64) -> i64 {
    ts.div_euclid(HOUR) * HOUR
}

/// The first second of the window for `now`.
pub fn window_start(now: i64) -> i64 {
    hour_start(now) - (HOURS - 1) * HOUR
}

/// How many hourly buckets run from `since` up to and including the one holding `now`.
fn bucket_count(since: i64, now: i64) -> usize {
    let n = (now - since).div_euclid(HOUR) + 1;
    n.clamp(1, 7 * HOURS) as usize
}

/// "HH:MM" (UTC) of each bucket's start: "14:00" for hour-aligned windows.
pub(crate) fn hour_labels(since: i64, n: usize) -> Vec<String> {
    (0..n as i64)
        .map(|i| {
            let secs = (since + i * HOUR).rem_euclid(86_400);
            format!("{:02}:{:02}", secs / 3600, secs % 3600 / 60)
        })
        .collect()
}

/// One value per bucket for each of `series`: the counts of its kind (every outcome).
fn hourly(
    id: &str,
    title: &str,
    series: &[(&str, &str, &'static str)],
    buckets: &[BucketCount],
    since: i64,
    now: i64,
) -> BarChart {
    let n = bucket_count(since, now);
    let series = series
        .iter()
        .map(|(kind, name, class)| {
            let mut values = vec![0i64; n];
            for b in buckets.iter().filter(|b| b.kind == *kind) {
                if let Some(v) = usize::try_from(b.bucket)
                    .ok()
                    .and_then(|i| values.get_mut(i))
                {
                    *v = v.saturating_add(b.count);
                }
            }
            Series {
                name: (*name).to_owned(),
                class,
                values,
            }
        })
        .collect();
    BarChart {
        id: id.to_owned(),
        title: title.to_owned(),
        labels: hour_labels(since, n),
        series,
    }
}

/// Sign-ins succeeded and failed per hour.
pub(crate) fn sign_in_chart(buckets: &[BucketCount], since: i64, now: i64) -> BarChart {
    hourly(
        "sign-ins",
        "Sign-ins per hour (UTC)",
        &SIGN_IN_SERIES,
        buckets,
        since,
        now,
    )
}

/// Lockouts, refresh-token reuse, code replays and denied MCP tool calls per hour.
pub(crate) fn security_chart(buckets: &[BucketCount], since: i64, now: i64) -> BarChart {
    hourly(
        "security",
        "Security events per hour (UTC)",
        &SECURITY_SERIES,
        buckets,
        since,
        now,
    )
}

/// A grant type as a short label ("token_exchange" for the RFC 8693 URN).
pub(crate) fn grant_label(grant: &str) -> String {
    match grant {
        "urn:ietf:params:oauth:grant-type:token-exchange" => "token_exchange".to_owned(),
        "urn:ietf:params:oauth:grant-type:device_code" => "device_code".to_owned(),
        "urn:ietf:params:oauth:grant-type:jwt-bearer" => "jwt_bearer".to_owned(),
        g => g.to_owned(),
    }
}

/// Tokens issued in the window, one bar per grant type (every known grant, zeros included,
/// then any other grant the counts name).
pub(crate) fn tokens_chart(tokens_by_grant: &BTreeMap<String, i64>) -> BarChart {
    let mut grants: Vec<&str> = GrantType::ALL.iter().map(|g| g.as_str()).collect();
    for g in tokens_by_grant.keys() {
        if !grants.contains(&g.as_str()) {
            grants.push(g);
        }
    }
    BarChart {
        id: "tokens".to_owned(),
        title: "Tokens issued by grant type".to_owned(),
        labels: grants.iter().map(|g| grant_label(g)).collect(),
        series: vec![Series {
            name: "Tokens issued".to_owned(),
            class: "info",
            values: grants
                .iter()
                .map(|g| tokens_by_grant.get(*g).copied().unwrap_or(0))
                .collect(),
        }],
    }
}

/// One number of a chart's table alternative: its series and value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    pub series: String,
    pub value: i64,
}

/// One row of a chart's table alternative: a label and a value per series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRow {
    pub label: String,
    pub cells: Vec<Cell>,
}

impl TableRow {
    /// The values, in the order of the series.
    #[cfg(test)]
    pub fn values(&self) -> Vec<i64> {
        self.cells.iter().map(|c| c.value).collect()
    }
}

/// A chart as the page shows it: a heading, the SVG, and its numbers as a table.
#[derive(Debug, Clone)]
pub struct ChartPanel {
    pub heading: &'static str,
    /// The table's first column: what the labels are ("Hour (UTC)", "Grant type").
    pub label_heading: &'static str,
    pub chart: BarChart,
    /// `chart.svg()`, rendered once.
    pub svg: String,
    pub rows: Vec<TableRow>,
    /// Per series, the sum of its values.
    pub totals: Vec<Cell>,
}

impl ChartPanel {
    pub fn new(heading: &'static str, label_heading: &'static str, chart: BarChart) -> Self {
        let rows = chart
            .labels
            .iter()
            .enumerate()
            .map(|(i, label)| TableRow {
                label: label.clone(),
                cells: chart
                    .series
                    .iter()
                    .map(|s| Cell {
                        series: s.name.clone(),
                        value: s.values.get(i).copied().unwrap_or(0),
                    })
                    .collect(),
            })
            .collect();
        let totals = chart
            .series
            .iter()
            .enumerate()
            .map(|(i, s)| Cell {
                series: s.name.clone(),
                value: chart.total(i),
            })
            .collect();
        Self {
            heading,
            label_heading,
            svg: chart.svg(),
            chart,
            rows,
            totals,
        }
    }
}

/// A number on the dashboard; `key` names it for tests and styling (`data-stat`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tile {
    pub key: &'static str,
    pub label: &'static str,
    pub value: i64,
}

/// Everything the dashboard shows.
#[derive(Debug, Clone)]
pub struct Dashboard {
    /// The window: from `since` (top of an hour, UTC) to `now`.
    pub since: i64,
    pub now: i64,
    pub tiles: Vec<Tile>,
    pub charts: Vec<ChartPanel>,
}

/// The dashboard from per-hour counts and the security summary's counts (pure).
pub(crate) fn assemble(
    buckets: &[BucketCount],
    counts: &authz_core::store::SecurityCounts,
    since: i64,
    now: i64,
) -> Dashboard {
    let sign_ins = sign_in_chart(buckets, since, now);
    let security = security_chart(buckets, since, now);
    let tokens = tokens_chart(&counts.tokens_by_grant);
    let tile = |key, label, value| Tile { key, label, value };
    let tiles = vec![
        tile("sign-ins", "Sign-ins", sign_ins.total(0)),
        tile("failed-sign-ins", "Failed sign-ins", sign_ins.total(1)),
        tile("tokens", "Tokens issued", tokens.total(0)),
        tile("lockouts", "Lockouts", security.total(0)),
        tile("refresh-reuse", "Refresh token reuse", security.total(1)),
        tile("code-replays", "Code replays", security.total(2)),
        tile("mcp-denied", "Denied MCP tool calls", security.total(3)),
        tile("sessions", "Active sessions", counts.active_sessions),
        tile("api-keys", "Active API keys", counts.active_api_keys),
        tile(
            "signing-keys",
            "Published signing keys",
            counts.published_signing_keys,
        ),
    ];
    Dashboard {
        since,
        now,
        tiles,
        charts: vec![
            ChartPanel::new("Sign-ins", "Hour (UTC)", sign_ins),
            ChartPanel::new("Tokens issued", "Grant type", tokens),
            ChartPanel::new("Security events", "Hour (UTC)", security),
        ],
    }
}

/// Read the counts for the window ending at `now` and build the dashboard. (Flush the audit
/// log first, so events just recorded are counted.)
pub async fn build(store: &dyn Store, now: i64) -> Result<Dashboard> {
    let since = window_start(now);
    let buckets = store
        .audit_buckets(&CHART_KINDS, since, HOUR, HOURS)
        .await?;
    let counts = store.security_counts(since, now).await?;
    Ok(assemble(&buckets, &counts, since, now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use authz_core::store::SecurityCounts;

    /// 2023-11-14 22:13:20 UTC.
    const NOW: i64 = 1_700_000_000;

    fn count(kind: &str, outcome: &str, bucket: i64, count: i64) -> BucketCount {
        BucketCount {
            kind: kind.to_owned(),
            outcome: outcome.to_owned(),
            bucket,
            count,
        }
    }

    /// (data-label, data-value) of each bar of `series` in the SVG.
    fn bars(svg: &str, series: &str) -> Vec<(String, i64)> {
        let needle = format!("data-series=\"{series}\" data-label=\"");
        svg.match_indices(&needle)
            .map(|(i, _)| {
                let rest = &svg[i + needle.len()..];
                let label = &rest[..rest.find('"').expect("label end")];
                let v = &rest[rest.find("data-value=\"").expect("value") + 12..];
                let value = v[..v.find('"').expect("value end")].parse().expect("int");
                (label.to_owned(), value)
            })
            .collect()
    }

    #[test]
    fn the_window_is_24_hours_ending_with_the_current_one() {
        let since = window_start(NOW);
        assert_eq!(since, 1_699_916_400); // 2023-11-13 23:00 UTC
        assert_eq!(hour_start(NOW), since + 23 * HOUR);
        assert_eq!(bucket_count(since, NOW), 24);
        // At the very top of an hour that hour is the last bucket.
        assert_eq!(window_start(hour_start(NOW)), since);
        assert_eq!(bucket_count(since, hour_start(NOW)), 24);
        let labels = hour_labels(since, 24);
        assert_eq!(labels.len(), 24);
        assert_eq!(labels[0], "23:00");
        assert_eq!(labels[1], "00:00");
        assert_eq!(labels[23], "22:00");
        assert_eq!(hour_labels(since + 1800, 1), vec!["23:30".to_owned()]);
    }

    #[test]
    fn sign_ins_per_hour_match_the_counts() {
        let since = window_start(NOW);
        let buckets = vec![
            count(SIGNED_IN, "success", 0, 3),
            count(SIGNED_IN, "success", 23, 5),
            count(SIGN_IN_FAILED, "failure", 23, 2),
            count(SIGN_IN_FAILED, "failure", 10, 1),
            // Another outcome of the same kind adds up; other kinds and buckets outside the
            // window are not counted.
            count(SIGNED_IN, "failure", 23, 1),
            count(LOCKED, "failure", 23, 9),
            count(SIGNED_IN, "success", 24, 100),
            count(SIGNED_IN, "success", -1, 100),
        ];
        let chart = sign_in_chart(&buckets, since, NOW);
        assert_eq!(chart.labels.len(), 24);
        assert_eq!(chart.series.len(), 2);
        assert_eq!(chart.total(0), 9);
        assert_eq!(chart.total(1), 3);
        let svg = chart.svg();
        let ok = bars(&svg, "Succeeded");
        let failed = bars(&svg, "Failed");
        assert_eq!(ok.len(), 24);
        assert_eq!(failed.len(), 24);
        assert_eq!(ok[0], ("23:00".to_owned(), 3));
        assert_eq!(ok[23], ("22:00".to_owned(), 6));
        assert_eq!(failed[10], ("09:00".to_owned(), 1));
        assert_eq!(failed[23], ("22:00".to_owned(), 2));
        let nonzero: Vec<usize> = (0..24).filter(|i| ok[*i].1 != 0).collect();
        assert_eq!(nonzero, vec![0, 23]);
        assert!(svg.contains("class=\"bar bar-ok\""));
        assert!(svg.contains("class=\"bar bar-bad\""));
    }

    #[test]
    fn security_events_and_tokens() {
        let since = window_start(NOW);
        let buckets = vec![
            count(LOCKED, "failure", 20, 1),
            count(REFRESH_REUSE, "failure", 21, 2),
            count(CODE_REPLAY, "failure", 22, 3),
            count(MCP_TOOL_DENIED, "failure", 23, 4),
            count(MCP_TOOL_DENIED, "failure", 0, 1),
        ];
        let chart = security_chart(&buckets, since, NOW);
        let svg = chart.svg();
        assert_eq!(bars(&svg, "Lockouts")[20].1, 1);
        assert_eq!(bars(&svg, "Refresh token reuse")[21].1, 2);
        assert_eq!(bars(&svg, "Code replays")[22].1, 3);
        let denied = bars(&svg, "Denied MCP tool calls");
        assert_eq!(denied[23], ("22:00".to_owned(), 4));
        assert_eq!(denied[0], ("23:00".to_owned(), 1));
        assert_eq!(chart.total(3), 5);

        let tokens = BTreeMap::from([
            ("authorization_code".to_owned(), 7),
            ("refresh_token".to_owned(), 4),
            (
                "urn:ietf:params:oauth:grant-type:token-exchange".to_owned(),
                1,
            ),
            ("urn:example:custom".to_owned(), 2),
        ]);
        let chart = tokens_chart(&tokens);
        let svg = chart.svg();
        let by_grant = bars(&svg, "Tokens issued");
        assert_eq!(
            by_grant,
            vec![
                ("client_credentials".to_owned(), 0),
                ("password".to_owned(), 0),
                ("refresh_token".to_owned(), 4),
                ("authorization_code".to_owned(), 7),
                ("token_exchange".to_owned(), 1),
                ("device_code".to_owned(), 0),
                ("jwt_bearer".to_owned(), 0),
                ("urn:example:custom".to_owned(), 2),
            ]
        );
        assert_eq!(chart.total(0), 14);
    }

    #[test]
    fn the_dashboard_has_tiles_and_tables_matching_the_charts() {
        let since = window_start(NOW);
        let buckets = vec![
            count(SIGNED_IN, "success", 23, 5),
            count(SIGN_IN_FAILED, "failure", 22, 2),
            count(MCP_TOOL_DENIED, "failure", 23, 4),
        ];
        let counts = SecurityCounts {
            tokens_by_grant: BTreeMap::from([("client_credentials".to_owned(), 3)]),
            active_sessions: 2,
            active_api_keys: 1,
            published_signing_keys: 2,
            ..SecurityCounts::default()
        };
        let d = assemble(&buckets, &counts, since, NOW);
        let tile = |key: &str| {
            d.tiles
                .iter()
                .find(|t| t.key == key)
                .map(|t| t.value)
                .expect(key)
        };
        assert_eq!(tile("sign-ins"), 5);
        assert_eq!(tile("failed-sign-ins"), 2);
        assert_eq!(tile("tokens"), 3);
        assert_eq!(tile("mcp-denied"), 4);
        assert_eq!(tile("lockouts"), 0);
        assert_eq!(tile("sessions"), 2);
        assert_eq!(tile("api-keys"), 1);
        assert_eq!(tile("signing-keys"), 2);

        assert_eq!(d.charts.len(), 3);
        let sign_ins = &d.charts[0];
        assert_eq!(sign_ins.rows.len(), 24);
        assert_eq!(sign_ins.rows[23].label, "22:00");
        assert_eq!(sign_ins.rows[23].values(), vec![5, 0]);
        assert_eq!(
            sign_ins.rows[23].cells[1],
            Cell {
                series: "Failed".to_owned(),
                value: 0
            }
        );
        assert_eq!(sign_ins.rows[22].values(), vec![0, 2]);
        let totals: Vec<i64> = sign_ins.totals.iter().map(|c| c.value).collect();
        assert_eq!(totals, vec![5, 2]);
        assert!(sign_ins.svg.starts_with("<svg"));
        let security = &d.charts[2];
        let totals: Vec<i64> = security.totals.iter().map(|c| c.value).collect();
        assert_eq!(totals, vec![0, 0, 0, 4]);
        assert_eq!(security.rows[0].cells.len(), 4);
        assert_eq!(security.rows[0].cells[3].series, "Denied MCP tool calls");
        let tokens = &d.charts[1];
        assert_eq!(tokens.rows[0].label, "client_credentials");
        assert_eq!(tokens.rows[0].values(), vec![3]);
    }
}
