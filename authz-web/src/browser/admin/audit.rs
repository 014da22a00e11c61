//! `GET /admin/audit`: the audit log, newest first, filtered (time range, kind, actor,
//! outcome, client, subject) and paged 50 at a time ("Older →" carries `before=<last id>`
//! and the filters); `GET /admin/audit.csv`: the same filters as a CSV download (at most
//! [`EXPORT_MAX`] rows, newest first; RFC 4180, formula cells neutralised).
//!
//! Filter values come from the query string: each is checked ([`Filter::parse`]) and a bad
//! one is a 400 page that says which, never a 500.

use authz_core::events::kinds;
use std::collections::HashMap;

use askama::Template;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::Notice;
use super::audit_filter::{Filter, PAGE};
use super::format::{csv_row, shorten, utc_iso, utc_minute};
use crate::browser::console::{Admin, Nav};
use crate::browser::web::PageError;
use authz_core::state::AppState;
use authz_core::store::{AuditEvent, AuditQuery, Outcome};

/// The most rows one CSV export holds.
pub(crate) const EXPORT_MAX: i64 = 10_000;

/// Kinds offered in the filter's `<datalist>` (any other kind can be typed): the catalogue.
pub(crate) const KNOWN_KINDS: &[&str] = kinds::ALL;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/audit", get(page))
        .route("/admin/audit.csv", get(export))
}

/// One event as a table row.
#[derive(Debug, Clone)]
pub struct Row {
    pub id: i64,
    pub time: String,
    pub iso: String,
    pub kind: String,
    pub ok: bool,
    pub outcome: &'static str,
    pub actor: String,
    pub subject: String,
    pub client: String,
    pub ip: String,
    /// The details JSON, shortened for the table; `details_full` in the cell's title.
    pub details: String,
    pub details_full: String,
}

fn details_text(e: &AuditEvent) -> String {
    if e.details.is_null() {
        String::new()
    } else {
        e.details.to_string()
    }
}

impl Row {
    fn of(e: &AuditEvent) -> Self {
        let full = details_text(e);
        Self {
            id: e.id.unwrap_or_default(),
            time: utc_minute(e.ts),
            iso: utc_iso(e.ts),
            kind: e.kind.clone(),
            ok: e.outcome == Outcome::Success,
            outcome: e.outcome.as_str(),
            actor: e.actor.clone().unwrap_or_default(),
            subject: e.subject.clone().unwrap_or_default(),
            client: e.client_id.clone().unwrap_or_default(),
            ip: e.ip.clone().unwrap_or_default(),
            details: shorten(&full, 120),
            details_full: shorten(&full, 2000),
        }
    }
}

#[derive(Debug, Template)]
#[template(path = "console/admin_audit.html")]
struct AuditPage {
    nav: Nav,
    notice: Option<Notice>,
    filter: Filter,
    kinds: &'static [&'static str],
    rows: Vec<Row>,
    /// "Older →": the next page's link, when there are older events.
    older: Option<String>,
    /// "Newest": back to the first page, when this is not it.
    newest: Option<String>,
    csv: String,
    export_max: i64,
}

type Params = Result<Query<HashMap<String, String>>, QueryRejection>;

fn params(p: Params) -> Result<HashMap<String, String>, String> {
    p.map(|Query(p)| p)
        .map_err(|_| "The filters could not be read from the address.".to_owned())
}

async fn page(
    State(state): State<AppState>,
    Admin(console): Admin,
    query: Params,
) -> Result<Response, PageError> {
    let raw = params(query);
    let parsed = raw.as_ref().map_err(Clone::clone).and_then(Filter::parse);
    let filter = match parsed {
        Ok(f) => f,
        Err(message) => {
            let typed = raw.as_ref().map(Filter::typed).unwrap_or_default();
            let page = AuditPage {
                nav: console.nav("audit"),
                notice: Some(Notice::error(message)),
                filter: typed,
                kinds: KNOWN_KINDS,
                rows: Vec::new(),
                older: None,
                newest: Some("/admin/audit".to_owned()),
                csv: "/admin/audit.csv".to_owned(),
                export_max: EXPORT_MAX,
            };
            return Ok(console.page_with(StatusCode::BAD_REQUEST, &page));
        }
    };
    state.audit_log.flush().await;
    // One more than a page: whether there are older events.
    let q = AuditQuery {
        limit: PAGE + 1,
        ..filter.query.clone()
    };
    let mut events = state.store.query_audit(&q).await?;
    let more = events.len() as i64 > PAGE;
    events.truncate(PAGE as usize);
    let older = more
        .then(|| events.last().and_then(|e| e.id))
        .flatten()
        .map(|id| filter.link("/admin/audit", Some(id)));
    let newest = filter
        .query
        .before_id
        .is_some()
        .then(|| filter.link("/admin/audit", None));
    let page = AuditPage {
        nav: console.nav("audit"),
        notice: None,
        rows: events.iter().map(Row::of).collect(),
        older,
        newest,
        csv: filter.link("/admin/audit.csv", None),
        kinds: KNOWN_KINDS,
        export_max: EXPORT_MAX,
        filter,
    };
    Ok(console.page(&page))
}

/// The CSV file of `events`: a header row, then one row per event (RFC 4180, CRLF).
pub(crate) fn to_csv(events: &[AuditEvent]) -> String {
    let mut out = csv_row(&[
        "id",
        "time",
        "kind",
        "outcome",
        "actor",
        "subject",
        "client_id",
        "ip",
        "details",
    ]);
    for e in events {
        let id = e.id.map(|i| i.to_string()).unwrap_or_default();
        out.push_str(&csv_row(&[
            id.as_str(),
            &utc_iso(e.ts),
            &e.kind,
            e.outcome.as_str(),
            e.actor.as_deref().unwrap_or(""),
            e.subject.as_deref().unwrap_or(""),
            e.client_id.as_deref().unwrap_or(""),
            e.ip.as_deref().unwrap_or(""),
            &details_text(e),
        ]));
    }
    out
}

async fn export(
    State(state): State<AppState>,
    Admin(console): Admin,
    query: Params,
) -> Result<Response, PageError> {
    let filter = params(query)
        .and_then(|p| Filter::parse(&p))
        .map_err(|m| PageError::page(StatusCode::BAD_REQUEST, "Invalid audit filter", m))?;
    state.audit_log.flush().await;
    let q = AuditQuery {
        before_id: None,
        limit: EXPORT_MAX,
        ..filter.query.clone()
    };
    let events = state.store.query_audit(&q).await?;
    let body = to_csv(&events);
    // Reading the audit log out is itself recorded (after the read: not in this file).
    let event = AuditEvent::new(state.now(), kinds::AUDIT_EXPORTED, Outcome::Success)
        .actor(&console.user.username)
        .details(serde_json::json!({
            "rows": events.len(),
            "filters": filter.query_string(None),
        }));
    state.audit(event).await;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"audit.csv\"",
            ),
        ],
        body,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_export_rows() {
        let mut e = AuditEvent::new(1_700_000_000, "login.failed", Outcome::Failure)
            .actor("=cmd|' /C calc'!A0")
            .client("web, app")
            .details(serde_json::json!({ "reason": "bad \"password\"" }));
        e.id = Some(42);
        e.ip = Some("192.0.2.1".into());
        let mut plain = AuditEvent::new(0, "key.created", Outcome::Success);
        plain.id = Some(1);
        let csv = to_csv(&[e, plain]);
        let lines: Vec<&str> = csv.split("\r\n").collect();
        assert_eq!(
            lines[0],
            "id,time,kind,outcome,actor,subject,client_id,ip,details"
        );
        assert_eq!(
            lines[1],
            "42,2023-11-14T22:13:20Z,login.failed,failure,'=cmd|' /C calc'!A0,,\"web, app\",\
             192.0.2.1,\"{\"\"reason\"\":\"\"bad \\\"\"password\\\"\"\"\"}\""
        );
        assert_eq!(lines[2], "1,1970-01-01T00:00:00Z,key.created,success,,,,,");
        assert_eq!(lines[3], "");
        assert_eq!(lines.len(), 4);
        assert!(csv.ends_with("\r\n"));
    }

    #[test]
    fn rows_shorten_details() {
        let mut e = AuditEvent::new(1_700_000_000, "token.issued", Outcome::Success)
            .details(serde_json::json!({ "scope": "x".repeat(300) }));
        e.id = Some(9);
        let r = Row::of(&e);
        assert_eq!(r.id, 9);
        assert_eq!(r.time, "2023-11-14 22:13");
        assert_eq!(r.iso, "2023-11-14T22:13:20Z");
        assert_eq!(r.details.chars().count(), 120);
        assert!(r.details.ends_with('…'));
        assert!(r.details_full.len() > 300);
        assert!(r.ok);
        let r = Row::of(&AuditEvent::new(0, "k", Outcome::Failure));
        assert_eq!(r.details, "");
        assert_eq!(r.outcome, "failure");
    }
}
