//! Server-rendered SVG bar charts for the console's dashboard: no JavaScript, and nothing the
//! page's `Content-Security-Policy: default-src 'self'` would block (no `style` attributes, no
//! `<style>` elements). Colours and fonts come from the stylesheet through `class` attributes:
//! the `<svg>` is `class="chart"` (the stylesheet gives it `width: 100%`, the `viewBox` keeps
//! the aspect ratio), each bar `class="bar bar-{class}"` with the series' CSS modifier.
//!
//! Every bar is a `<rect>` with `data-series`, `data-label` and `data-value`, and a `<title>`
//! child that browsers show as a tooltip; the chart as a whole is described for screen readers
//! by its `<title>` and a one-sentence `<desc>`.

use std::fmt::Write;

/// The `viewBox` width.
const WIDTH: f64 = 720.0;
/// The `viewBox` height.
const HEIGHT: f64 = 240.0;
/// Room left of the plot for the y axis' tick labels.
const LEFT: f64 = 48.0;
/// Room right of the plot.
const RIGHT: f64 = 12.0;
/// Room above the plot for the legend.
const TOP: f64 = 28.0;
/// Room below the plot for the x labels.
const BOTTOM: f64 = 28.0;
/// The plot's height: a bar of value `v` is `v / scale * PLOT_HEIGHT` high.
const PLOT_HEIGHT: f64 = HEIGHT - TOP - BOTTOM;
/// The plot's width.
const PLOT_WIDTH: f64 = WIDTH - LEFT - RIGHT;
/// The y coordinate of the x axis (value 0).
const BASELINE: f64 = TOP + PLOT_HEIGHT;
/// At most this many x labels are shown; with more labels only every n-th is.
const MAX_X_LABELS: usize = 12;
/// The share of a label's slot that its group of bars takes.
const GROUP_SHARE: f64 = 0.8;

/// One series of a [`BarChart`]: a value per label.
#[derive(Debug, Clone)]
pub struct Series {
    /// Shown in the legend, the tooltips and the description.
    pub name: String,
    /// CSS modifier, e.g. "ok", "bad", "warn", "info": the bars are `class="bar bar-{class}"`.
    pub class: &'static str,
    /// One value per label of the chart; missing values count as 0.
    pub values: Vec<i64>,
}

/// A grouped bar chart: for each label, one bar per series, side by side.
#[derive(Debug, Clone)]
pub struct BarChart {
    /// Prefix of the ids of the `<title>` and `<desc>` elements; unique within the page, and a
    /// plain token (no spaces), as it is used in `aria-labelledby`.
    pub id: String,
    pub title: String,
    /// The x axis, e.g. hours as "14:00".
    pub labels: Vec<String>,
    pub series: Vec<Series>,
}

impl BarChart {
    /// The chart as an `<svg>` element to inline in HTML.
    pub fn svg(&self) -> String {
        let id = escape(&self.id);
        let scale = self.scale();
        let mut out = String::new();
        let _ = write!(
            out,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" class=\"chart\" \
             role=\"img\" aria-labelledby=\"{id}-title {id}-desc\">\
             <title id=\"{id}-title\">{title}</title>\
             <desc id=\"{id}-desc\">{desc}</desc>",
            w = num(WIDTH),
            h = num(HEIGHT),
            title = escape(&self.title),
            desc = escape(&self.description()),
        );
        self.write_legend(&mut out);
        write_y_axis(&mut out, scale);
        self.write_x_labels(&mut out);
        self.write_bars(&mut out, scale);
        out.push_str("</svg>");
        out
    }

    /// The largest value of any series (0 if there are none).
    pub fn max(&self) -> i64 {
        self.series
            .iter()
            .flat_map(|s| s.values.iter().copied())
            .max()
            .unwrap_or(0)
    }

    /// The sum of the values of series number `series` (0 if there is no such series).
    pub fn total(&self, series: usize) -> i64 {
        self.series.get(series).map_or(0, |s| {
            s.values.iter().copied().fold(0i64, i64::saturating_add)
        })
    }

    /// The y axis' top value: [`BarChart::max`] rounded up to 1, 2 or 5 times a power of ten
    /// (1 for an empty or all-zero chart).
    fn scale(&self) -> i64 {
        nice_ceiling(self.max())
    }

    /// One sentence for `<desc>`: the totals per series and the range of labels.
    fn description(&self) -> String {
        if self.labels.is_empty() || self.series.is_empty() {
            return format!("{}: no data.", self.title);
        }
        let totals = self
            .series
            .iter()
            .enumerate()
            .map(|(i, s)| format!("{} {}", s.name, self.total(i)))
            .collect::<Vec<_>>()
            .join(", ");
        let first = &self.labels[0];
        let last = &self.labels[self.labels.len() - 1];
        if self.labels.len() == 1 {
            format!("{}, {first}: {totals}.", self.title)
        } else {
            format!("{}, {first} to {last}: in total {totals}.", self.title)
        }
    }

    /// The width of one label's slot on the x axis.
    fn slot_width(&self) -> f64 {
        PLOT_WIDTH / self.labels.len().max(1) as f64
    }

    /// A swatch and the name of each series, in a row above the plot.
    fn write_legend(&self, out: &mut String) {
        out.push_str("<g class=\"legend\">");
        let mut x = LEFT;
        for s in &self.series {
            let _ = write!(
                out,
                "<rect class=\"legend-swatch bar-{class}\" x=\"{x}\" y=\"8\" width=\"10\" \
                 height=\"10\"/><text class=\"legend-label\" x=\"{tx}\" y=\"17\" \
                 font-size=\"11\">{name}</text>",
                class = escape(s.class),
                x = num(x),
                tx = num(x + 14.0),
                name = escape(&s.name),
            );
            // A rough width of the name at 11px, plus a gap.
            x += 14.0 + 6.5 * s.name.chars().count() as f64 + 16.0;
        }
        out.push_str("</g>");
    }

    /// The label under every slot, or under every n-th one if there are more than
    /// [`MAX_X_LABELS`].
    fn write_x_labels(&self, out: &mut String) {
        let n = self.labels.len();
        let step = n.div_ceil(MAX_X_LABELS).max(1);
        let slot = self.slot_width();
        out.push_str("<g class=\"axis axis-x\">");
        for (i, label) in self.labels.iter().enumerate().step_by(step) {
            let _ = write!(
                out,
                "<text class=\"tick-label\" x=\"{x}\" y=\"{y}\" text-anchor=\"middle\" \
                 font-size=\"11\">{label}</text>",
                x = num(LEFT + slot * (i as f64 + 0.5)),
                y = num(BASELINE + 16.0),
                label = escape(label),
            );
        }
        out.push_str("</g>");
    }

    /// One `<rect>` per (label, series), zero values included (height 0).
    fn write_bars(&self, out: &mut String, scale: i64) {
        let slot = self.slot_width();
        let k = self.series.len().max(1) as f64;
        let bar_width = slot * GROUP_SHARE / k;
        let pad = slot * (1.0 - GROUP_SHARE) / 2.0;
        out.push_str("<g class=\"bars\">");
        for (i, label) in self.labels.iter().enumerate() {
            for (j, s) in self.series.iter().enumerate() {
                let value = s.values.get(i).copied().unwrap_or(0);
                let h = bar_height(value, scale);
                let name = escape(&s.name);
                let label = escape(label);
                let _ = write!(
                    out,
                    "<rect class=\"bar bar-{class}\" x=\"{x}\" y=\"{y}\" width=\"{w}\" \
                     height=\"{h}\" data-series=\"{name}\" data-label=\"{label}\" \
                     data-value=\"{value}\"><title>{name} at {label}: {value}</title></rect>",
                    class = escape(s.class),
                    x = num(LEFT + slot * i as f64 + pad + bar_width * j as f64),
                    y = num(BASELINE - h),
                    w = num(bar_width),
                    h = num(h),
                );
            }
        }
        out.push_str("</g>");
    }
}

/// The y axis: the axis lines, and grid lines with tick labels at 0, half the scale (when that
/// is a whole number) and the scale.
fn write_y_axis(out: &mut String, scale: i64) {
    out.push_str("<g class=\"axis axis-y\">");
    let mut ticks = vec![0, scale];
    if scale % 2 == 0 {
        ticks.insert(1, scale / 2);
    }
    for tick in ticks {
        let y = num(BASELINE - bar_height(tick, scale));
        let _ = write!(
            out,
            "<line class=\"grid\" x1=\"{x1}\" y1=\"{y}\" x2=\"{x2}\" y2=\"{y}\"/>\
             <text class=\"tick-label\" x=\"{tx}\" y=\"{y}\" dy=\"4\" text-anchor=\"end\" \
             font-size=\"11\">{tick}</text>",
            x1 = num(LEFT),
            x2 = num(WIDTH - RIGHT),
            tx = num(LEFT - 6.0),
        );
    }
    let _ = write!(
        out,
        "<line class=\"axis-line\" x1=\"{x}\" y1=\"{top}\" x2=\"{x}\" y2=\"{bottom}\"/>",
        x = num(LEFT),
        top = num(TOP),
        bottom = num(BASELINE),
    );
    out.push_str("</g>");
}

/// The height of a bar of `value` on an axis up to `scale`: proportional, negative values as 0.
fn bar_height(value: i64, scale: i64) -> f64 {
    if value <= 0 || scale <= 0 {
        return 0.0;
    }
    (value as f64 / scale as f64 * PLOT_HEIGHT).min(PLOT_HEIGHT)
}

/// The smallest 1, 2 or 5 times a power of ten that is at least `max` (1 if `max` ≤ 1).
fn nice_ceiling(max: i64) -> i64 {
    if max <= 1 {
        return 1;
    }
    let mut power: i64 = 1;
    loop {
        for m in [1, 2, 5] {
            match power.checked_mul(m) {
                Some(candidate) if candidate >= max => return candidate,
                Some(_) => {}
                None => return max,
            }
        }
        match power.checked_mul(10) {
            Some(next) => power = next,
            None => return max,
        }
    }
}

/// A coordinate with at most three decimals, without trailing zeros.
fn num(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_owned()
    } else {
        s.to_owned()
    }
}

/// `s` escaped for XML text and attribute values (`&`, `<`, `>`, `"`, `'`).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of attribute `name` in the tag `tag` (the text from `<` to `>`).
    fn attr<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
        let needle = format!(" {name}=\"");
        let start = tag.find(&needle)? + needle.len();
        let len = tag[start..].find('"')?;
        Some(&tag[start..start + len])
    }

    /// The opening tags of all `<rect class="bar ...">` elements.
    fn bars(svg: &str) -> Vec<&str> {
        svg.match_indices("<rect class=\"bar ")
            .map(|(i, _)| {
                let end = svg[i..].find('>').expect("tag end");
                &svg[i..=i + end]
            })
            .collect()
    }

    fn hourly() -> BarChart {
        BarChart {
            id: "logins".to_owned(),
            title: "Logins per hour".to_owned(),
            labels: vec!["13:00".into(), "14:00".into(), "15:00".into()],
            series: vec![
                Series {
                    name: "ok".into(),
                    class: "ok",
                    values: vec![3, 0, 17],
                },
                Series {
                    name: "failed".into(),
                    class: "bad",
                    values: vec![1, 2, 0],
                },
            ],
        }
    }

    #[test]
    fn one_rect_per_label_and_series_with_proportional_heights() {
        let chart = hourly();
        assert_eq!(chart.max(), 17);
        assert_eq!(chart.total(0), 20);
        assert_eq!(chart.total(1), 3);
        assert_eq!(chart.total(2), 0);
        let scale = chart.scale();
        assert_eq!(scale, 20);

        let svg = chart.svg();
        assert!(
            svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 720 240\"")
        );
        assert!(svg.contains("class=\"chart\""));
        assert!(svg.contains("aria-labelledby=\"logins-title logins-desc\""));
        assert!(svg.contains("<title id=\"logins-title\">Logins per hour</title>"));
        assert!(svg.contains("<desc id=\"logins-desc\">"));
        assert!(svg.contains("ok 20"), "{svg}");
        assert!(svg.contains("failed 3"), "{svg}");
        assert!(svg.ends_with("</svg>"));

        let rects = bars(&svg);
        assert_eq!(rects.len(), 6);
        let mut seen = Vec::new();
        for tag in &rects {
            let series = attr(tag, "data-series").expect("data-series");
            let label = attr(tag, "data-label").expect("data-label");
            let value: i64 = attr(tag, "data-value")
                .expect("data-value")
                .parse()
                .expect("int");
            let height: f64 = attr(tag, "height").expect("height").parse().expect("float");
            let y: f64 = attr(tag, "y").expect("y").parse().expect("float");
            let expected = value as f64 / scale as f64 * PLOT_HEIGHT;
            assert!(
                (height - expected).abs() < 0.001,
                "{tag}: {height} vs {expected}"
            );
            assert!(
                (y + height - BASELINE).abs() < 0.002,
                "{tag}: bars stand on the axis"
            );
            let class = attr(tag, "class").expect("class");
            assert_eq!(
                class,
                if series == "ok" {
                    "bar bar-ok"
                } else {
                    "bar bar-bad"
                }
            );
            seen.push((series.to_owned(), label.to_owned(), value));
        }
        let expected: Vec<(String, String, i64)> = [
            ("ok", "13:00", 3),
            ("failed", "13:00", 1),
            ("ok", "14:00", 0),
            ("failed", "14:00", 2),
            ("ok", "15:00", 17),
            ("failed", "15:00", 0),
        ]
        .iter()
        .map(|(s, l, v)| ((*s).to_owned(), (*l).to_owned(), *v))
        .collect();
        assert_eq!(seen, expected);
        assert!(svg.contains("<title>ok at 15:00: 17</title>"));
        assert!(svg.contains("<title>failed at 14:00: 2</title>"));
        // Heights of different bars compare as their values do.
        assert!(svg.contains("height=\"0\" data-series=\"ok\" data-label=\"14:00\""));
        // The y axis runs from 0 to the scale; a legend entry per series.
        assert!(svg.contains(">0</text>") && svg.contains(">20</text>"));
        assert_eq!(svg.matches("class=\"legend-swatch").count(), 2);
        // All three labels are shown.
        for l in ["13:00", "14:00", "15:00"] {
            assert!(svg.contains(&format!(">{l}</text>")), "{l}");
        }
        assert!(!svg.contains("style"), "{svg}");
    }

    #[test]
    fn zero_series_and_empty_charts() {
        let mut chart = hourly();
        chart.series[0].values = vec![0, 0, 0];
        chart.series[1].values = vec![0, 0, 0];
        assert_eq!(chart.max(), 0);
        let svg = chart.svg();
        let rects = bars(&svg);
        assert_eq!(rects.len(), 6);
        assert!(rects.iter().all(|t| attr(t, "height") == Some("0")));
        assert!(rects.iter().all(|t| attr(t, "data-value") == Some("0")));
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");

        // A series shorter than the labels: the missing values are 0.
        let mut short = hourly();
        short.series[1].values = vec![5];
        assert_eq!(bars_of(&short.svg(), "failed"), vec!["5", "0", "0"]);

        let empty = BarChart {
            id: "e".into(),
            title: "Nothing".into(),
            labels: vec![],
            series: vec![],
        };
        assert_eq!(empty.max(), 0);
        assert_eq!(empty.total(0), 0);
        let svg = empty.svg();
        assert!(bars(&svg).is_empty());
        assert!(svg.contains("no data"));
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");

        let no_series = BarChart {
            series: vec![],
            ..hourly()
        };
        assert!(bars(&no_series.svg()).is_empty());
    }

    fn bars_of<'a>(svg: &'a str, series: &str) -> Vec<&'a str> {
        bars(svg)
            .into_iter()
            .filter(|t| attr(t, "data-series") == Some(series))
            .filter_map(|t| attr(t, "data-value"))
            .collect()
    }

    #[test]
    fn every_text_is_escaped() {
        let evil = "<script>&\"'";
        let chart = BarChart {
            id: "x\"y".into(),
            title: evil.into(),
            labels: vec![evil.into()],
            series: vec![Series {
                name: evil.into(),
                class: "ok",
                values: vec![1],
            }],
        };
        let svg = chart.svg();
        assert!(!svg.contains("<script"), "{svg}");
        assert!(!svg.contains("&\""), "{svg}");
        assert!(!svg.contains("x\"y"), "{svg}");
        assert!(svg.contains("&lt;script&gt;&amp;&quot;&#39;"), "{svg}");
        assert!(!svg.contains("style="));
        assert_eq!(escape("a&b<c>d\"e'f"), "a&amp;b&lt;c&gt;d&quot;e&#39;f");
        // Every attribute value stays within its quotes: the quote count is even in each tag.
        for tag in svg.split('<').skip(1) {
            let tag = tag.split('>').next().unwrap_or_default();
            assert_eq!(tag.matches('"').count() % 2, 0, "{tag}");
        }
    }

    #[test]
    fn many_labels_show_every_nth() {
        let labels: Vec<String> = (0..48)
            .map(|i| format!("{:02}:{:02}", i / 2, i % 2 * 30))
            .collect();
        let chart = BarChart {
            id: "day".into(),
            title: "Day".into(),
            labels: labels.clone(),
            series: vec![Series {
                name: "tokens".into(),
                class: "info",
                values: (0..48).collect(),
            }],
        };
        let svg = chart.svg();
        assert_eq!(bars(&svg).len(), 48);
        let shown: Vec<&String> = labels
            .iter()
            .filter(|l| svg.contains(&format!(">{l}</text>")))
            .collect();
        assert_eq!(shown.len(), 12, "{shown:?}");
        assert_eq!(shown[0], "00:00");
        assert_eq!(shown[1], "02:00");
        assert_eq!(chart.scale(), 50);
        assert!(!svg.contains("style="));
    }

    #[test]
    fn nice_ceilings() {
        let cases = [
            (0, 1),
            (1, 1),
            (2, 2),
            (3, 5),
            (5, 5),
            (6, 10),
            (17, 20),
            (20, 20),
            (21, 50),
            (99, 100),
            (101, 200),
            (-4, 1),
        ];
        for (max, scale) in cases {
            assert_eq!(nice_ceiling(max), scale, "{max}");
        }
        assert_eq!(nice_ceiling(i64::MAX), i64::MAX);
        assert_eq!(num(12.0), "12");
        assert_eq!(num(0.5), "0.5");
        assert_eq!(num(1.0 / 3.0), "0.333");
        assert_eq!(num(-0.0001), "0");
    }
}
