//! The audit log's filters (`/admin/audit`, `/admin/audit.csv`): read from the query string
//! and checked ([`Filter::parse`]: a bad value is a message for the page, never a 500), turned
//! into an `AuditQuery`, and written back into links (paging, CSV export) with exact times.

use std::collections::HashMap;

use super::format::{Edge, datetime_local, parse_time, shorten};
use authz_core::store::AuditQuery;

/// Events per page.
pub(crate) const PAGE: i64 = 50;
/// The longest filter value accepted.
const MAX_FILTER: usize = 200;

/// The filters as typed (for the form and the links), and as a query.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// The form's values: what was typed, or the times as `datetime-local` values.
    pub from: String,
    pub to: String,
    pub kind: String,
    pub actor: String,
    pub outcome: String,
    pub client: String,
    pub subject: String,
    pub query: AuditQuery,
}

impl Filter {
    /// Read the filters from the query parameters; the message says what is wrong.
    pub fn parse(params: &HashMap<String, String>) -> Result<Self, String> {
        let get = |name: &str| -> Result<Option<String>, String> {
            match params.get(name).map(|v| v.trim()) {
                None | Some("") => Ok(None),
                Some(v) if v.chars().count() > MAX_FILTER => Err(format!(
                    "The {name} filter is too long (at most {MAX_FILTER} characters)."
                )),
                Some(v) if v.chars().any(char::is_control) => {
                    Err(format!("The {name} filter holds control characters."))
                }
                Some(v) => Ok(Some(v.to_owned())),
            }
        };
        let time = |name: &str, edge| -> Result<Option<i64>, String> {
            get(name)?
                .map(|v| {
                    let field = if name == "from" { "From" } else { "To" };
                    parse_time(&v, edge).map_err(|e| format!("{field}: {e}."))
                })
                .transpose()
        };
        let from = time("from", Edge::Start)?;
        let to = time("to", Edge::End)?;
        if let (Some(f), Some(t)) = (from, to)
            && f > t
        {
            return Err("The time range ends before it starts: swap From and To.".into());
        }
        let outcome = match get("outcome")?.as_deref() {
            None | Some("any") => None,
            Some(o @ ("success" | "failure")) => Some(o.to_owned()),
            Some(_) => return Err("Outcome is any, success or failure.".into()),
        };
        let before_id = match get("before")? {
            None => None,
            Some(b) => match b.parse::<i64>() {
                Ok(id) if id > 0 => Some(id),
                _ => return Err("The page link is damaged (before must be an event id).".into()),
            },
        };
        let query = AuditQuery {
            from,
            to,
            kind: get("kind")?,
            actor: get("actor")?,
            outcome,
            client: get("client")?,
            subject: get("subject")?,
            before_id,
            limit: PAGE,
        };
        Ok(Self {
            from: from.map(datetime_local).unwrap_or_default(),
            to: to.map(datetime_local).unwrap_or_default(),
            kind: query.kind.clone().unwrap_or_default(),
            actor: query.actor.clone().unwrap_or_default(),
            outcome: query.outcome.clone().unwrap_or_default(),
            client: query.client.clone().unwrap_or_default(),
            subject: query.subject.clone().unwrap_or_default(),
            query,
        })
    }

    /// The form's values as they were typed, when they could not be read.
    pub fn typed(params: &HashMap<String, String>) -> Self {
        let v = |n: &str| shorten(params.get(n).map_or("", |s| s.trim()), MAX_FILTER);
        Self {
            from: v("from"),
            to: v("to"),
            kind: v("kind"),
            actor: v("actor"),
            outcome: v("outcome"),
            client: v("client"),
            subject: v("subject"),
            query: AuditQuery::default(),
        }
    }

    /// The query string of these filters (exact times as unix seconds), and `before`.
    pub(crate) fn query_string(&self, before: Option<i64>) -> String {
        let q = &self.query;
        let mut s = form_urlencoded::Serializer::new(String::new());
        let from = q.from.map(|t| t.to_string());
        let to = q.to.map(|t| t.to_string());
        let before = before.map(|b| b.to_string());
        let pairs = [
            ("from", from.as_deref()),
            ("to", to.as_deref()),
            ("kind", q.kind.as_deref()),
            ("actor", q.actor.as_deref()),
            ("outcome", q.outcome.as_deref()),
            ("client", q.client.as_deref()),
            ("subject", q.subject.as_deref()),
            ("before", before.as_deref()),
        ];
        for (k, v) in pairs {
            if let Some(v) = v {
                s.append_pair(k, v);
            }
        }
        s.finish()
    }

    /// `path` with these filters (and `before`), e.g. the "Older →" link.
    pub fn link(&self, path: &str, before: Option<i64>) -> String {
        let qs = self.query_string(before);
        if qs.is_empty() {
            path.to_owned()
        } else {
            format!("{path}?{qs}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn empty_filters_are_no_filters() {
        let f = Filter::parse(&params(&[
            ("from", ""),
            ("to", " "),
            ("kind", ""),
            ("outcome", "any"),
            ("unknown", "ignored"),
        ]))
        .expect("valid");
        let query = &f.query;
        assert_eq!((query.from, query.to, query.before_id), (None, None, None));
        assert_eq!(
            (&query.kind, &query.actor, &query.outcome),
            (&None, &None, &None)
        );
        assert_eq!((&query.client, &query.subject), (&None, &None));
        assert_eq!(query.limit, PAGE);
        assert_eq!(f.query_string(None), "");
        assert_eq!(f.link("/admin/audit", None), "/admin/audit");
        assert_eq!(f.link("/admin/audit", Some(7)), "/admin/audit?before=7");
    }

    #[test]
    fn filters_are_read_and_carried_by_links() {
        let f = Filter::parse(&params(&[
            ("from", "2023-11-14T22:00"),
            ("to", "2023-11-14T22:13"),
            ("kind", " login.failed "),
            ("actor", "alice & bob"),
            ("outcome", "failure"),
            ("client", "https://app.example/c.json"),
            ("subject", "usr_1"),
            ("before", "120"),
        ]))
        .expect("valid");
        let query = &f.query;
        assert_eq!(query.from, Some(1_699_999_200));
        assert_eq!(query.to, Some(1_700_000_039));
        assert_eq!(query.kind.as_deref(), Some("login.failed"));
        assert_eq!(query.actor.as_deref(), Some("alice & bob"));
        assert_eq!(query.outcome.as_deref(), Some("failure"));
        assert_eq!(query.client.as_deref(), Some("https://app.example/c.json"));
        assert_eq!(query.subject.as_deref(), Some("usr_1"));
        assert_eq!(query.before_id, Some(120));
        assert_eq!(query.limit, PAGE);
        // The form shows the times as datetime-local values.
        assert_eq!(f.from, "2023-11-14T22:00");
        assert_eq!(f.to, "2023-11-14T22:13:59");
        let link = f.link("/admin/audit", Some(77));
        assert_eq!(
            link,
            "/admin/audit?from=1699999200&to=1700000039&kind=login.failed&actor=alice+%26+bob\
             &outcome=failure&client=https%3A%2F%2Fapp.example%2Fc.json&subject=usr_1&before=77"
        );
        // The link reads back as the same filters.
        let back: HashMap<String, String> =
            form_urlencoded::parse(link.split_once('?').expect("query").1.as_bytes())
                .into_owned()
                .collect();
        let again = Filter::parse(&back).expect("valid");
        assert_eq!(again.query.from, query.from);
        assert_eq!(again.query.to, query.to);
        assert_eq!(again.query.actor, query.actor);
        assert_eq!(again.query.before_id, Some(77));
        assert_eq!(again.to, "2023-11-14T22:13:59");
        // Unix seconds work too.
        let f = Filter::parse(&params(&[("from", "1700000000")])).expect("valid");
        assert_eq!(f.query.from, Some(1_700_000_000));
        assert_eq!(f.from, "2023-11-14T22:13:20");
    }

    #[test]
    fn bad_filters_say_what_is_wrong() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("from", "yesterday")],
                "From: \"yesterday\" is not a time",
            ),
            (&[("to", "2023-02-30T00:00")], "To: "),
            (
                &[("from", "2023-11-15T00:00"), ("to", "2023-11-14T00:00")],
                "ends before it starts",
            ),
            (
                &[("outcome", "maybe")],
                "Outcome is any, success or failure",
            ),
            (&[("before", "x")], "before must be an event id"),
            (&[("before", "-3")], "before must be an event id"),
            (&[("kind", "a\u{0}b")], "control characters"),
        ];
        for (pairs, expected) in cases {
            let e = Filter::parse(&params(pairs)).expect_err(expected);
            assert!(e.contains(expected), "{pairs:?}: {e}");
        }
        let long = "k".repeat(201);
        let e = Filter::parse(&params(&[("kind", &long)])).expect_err("long");
        assert!(e.contains("too long"), "{e}");
        // The form shows what was typed, cut to size.
        let typed = Filter::typed(&params(&[("from", "yesterday"), ("kind", &long)]));
        assert_eq!(typed.from, "yesterday");
        assert_eq!(typed.kind.chars().count(), 200);
    }
}
