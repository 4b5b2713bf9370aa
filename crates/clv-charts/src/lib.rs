//! SVG charts of clv_ext, free of PostgreSQL: the pictures analysts know from `lifetimes`
//! (`plot_frequency_recency_matrix`, `plot_probability_alive_matrix`, `plot_period_transactions`,
//! `plot_calibration_purchases_vs_holdout_purchases`, `plot_history_alive`) and two of the
//! pipeline (the CLV concentration curve with its tier cut points, tier migration).
//!
//! Drawing is [plotters](https://crates.io/crates/plotters) with only its SVG backend: it is the
//! well-kept Rust plotting crate, and its SVG backend writes text as `<text>` elements (escaped),
//! so a server needs no font files or font libraries. This crate only lays out the data the
//! caller computed; the models' formulas stay in `clv-math`.
//!
//! Every chart is a complete `<svg>` element with a title, axis descriptions (with units) and a
//! legend where there is more than one series. Errors: [`ChartError::Invalid`] for data that
//! cannot be drawn (non-finite values, size limits, mismatched lengths), which the SQL layer
//! reports as 22023; [`ChartError::Draw`] only for a plotters failure (a bug).

mod bars;
mod heatmap;
mod lines;

pub use bars::grouped_bars;
pub use heatmap::{count_matrix, heatmap, Cell};
pub use lines::{lines, Guide, Line, Note};

use std::fmt;

/// Chart size in pixels: the width of a report column, the aspect of lifetimes' default figures.
pub const WIDTH: u32 = 760;
pub const HEIGHT: u32 = 480;

/// The most points, cells, bars or guides one chart draws. An SVG element costs about 100 bytes,
/// so this bounds a chart near 20 MB: a backend never builds an unbounded string.
pub const MAX_ELEMENTS: usize = 200_000;

#[derive(Debug, Clone, PartialEq)]
pub enum ChartError {
    Invalid(String),
    Draw(String),
}

impl fmt::Display for ChartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChartError::Invalid(m) => write!(f, "{m}"),
            ChartError::Draw(m) => write!(f, "drawing the chart failed: {m}"),
        }
    }
}

impl std::error::Error for ChartError {}

pub type Result<T> = std::result::Result<T, ChartError>;

/// The words on a chart.
#[derive(Debug, Clone, Copy)]
pub struct Labels<'a> {
    pub title: &'a str,
    pub x: &'a str,
    pub y: &'a str,
}

/// The finished chart on one line, without backslashes or tabs: PostgreSQL's text COPY format
/// (`\copy (SELECT ...) TO 'chart.svg'`) escapes those characters, so this way the file it
/// writes is the SVG itself. Newlines and tabs in SVG are only whitespace between elements or
/// around text, which SVG collapses anyway; a backslash in a label becomes its character
/// reference.
pub(crate) fn finish(svg: String) -> String {
    let mut out = String::with_capacity(svg.len());
    for ch in svg.chars() {
        match ch {
            '\n' | '\r' => {}
            '\t' => out.push(' '),
            '\\' => out.push_str("&#92;"),
            c => out.push(c),
        }
    }
    out
}

/// The legend every chart draws the same way (15 px labels on a light box) at `position`.
pub(crate) fn draw_legend<'a, CT: plotters::coord::CoordTranslate>(
    chart: &mut plotters::chart::ChartContext<'a, plotters::prelude::SVGBackend<'a>, CT>,
    position: plotters::chart::SeriesLabelPosition,
) -> Result<()> {
    use plotters::style::{Color, BLACK, WHITE};
    chart
        .configure_series_labels()
        .position(position)
        .label_font(("sans-serif", 15))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK.mix(0.3))
        .draw()
        .map_err(draw_err)
}

pub(crate) fn draw_err<E: fmt::Debug>(e: E) -> ChartError {
    ChartError::Draw(format!("{e:?}"))
}

pub(crate) fn invalid(msg: impl Into<String>) -> ChartError {
    ChartError::Invalid(msg.into())
}

pub(crate) fn check_finite(what: &str, v: f64) -> Result<f64> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(invalid(format!("{what} must be finite, got {v}")))
    }
}

pub(crate) fn check_size(what: &str, n: usize) -> Result<()> {
    if n > MAX_ELEMENTS {
        Err(invalid(format!(
            "{what}: {n} elements, more than the {MAX_ELEMENTS} one chart draws"
        )))
    } else {
        Ok(())
    }
}

/// A range that plotters can draw: widened when empty, padded by `pad` of its span.
pub(crate) fn padded(lo: f64, hi: f64, pad: f64) -> (f64, f64) {
    let (lo, hi) = if hi > lo {
        (lo, hi)
    } else if lo == 0.0 {
        (0.0, 1.0)
    } else {
        (lo - lo.abs() * 0.5, hi + hi.abs() * 0.5)
    };
    let d = (hi - lo) * pad;
    (lo - d, hi + d)
}

/// Axis numbers without float noise: 0.30000000000000004 -> "0.3", 1200000 -> "1.2M".
pub(crate) fn tick(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{}M", trim(v / 1e6))
    } else if a >= 1e4 {
        format!("{}k", trim(v / 1e3))
    } else {
        trim(v)
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.into()
    }
}

/// Series colours: a colour-blind-safe qualitative palette (Okabe and Ito, 2008).
pub(crate) const PALETTE: [(u8, u8, u8); 6] = [
    (0, 114, 178),
    (213, 94, 0),
    (0, 158, 115),
    (204, 121, 167),
    (230, 159, 0),
    (86, 180, 233),
];

pub(crate) fn colour(i: usize) -> plotters::style::RGBColor {
    let (r, g, b) = PALETTE[i % PALETTE.len()];
    plotters::style::RGBColor(r, g, b)
}

/// The viridis colour map (matplotlib's default, as in lifetimes' matrices), `t` in [0, 1]
/// (plotters' `ViridisRGB`; a non-finite `t` is the low end).
pub(crate) fn viridis(t: f64) -> plotters::style::RGBColor {
    use plotters::style::colors::colormaps::{ColorMap, ViridisRGB};
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    ViridisRGB.get_color(t as f32)
}

#[cfg(test)]
pub(crate) mod testing {
    /// A chart is a well-formed SVG document with its words in it (checked with a small XML
    /// tag-balance scan: the browser test renders the real thing).
    pub fn assert_svg(svg: &str, words: &[&str]) {
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
        assert!(svg.trim_end().ends_with("</svg>"));
        let mut stack: Vec<String> = Vec::new();
        let mut rest = svg;
        while let Some(i) = rest.find('<') {
            rest = &rest[i + 1..];
            let end = rest.find('>').expect("unclosed tag");
            let tag = &rest[..end];
            rest = &rest[end + 1..];
            if tag.starts_with('?') || tag.starts_with('!') {
                continue;
            }
            let name: String = tag
                .trim_start_matches('/')
                .chars()
                .take_while(|c| c.is_alphanumeric())
                .collect();
            if let Some(stripped) = tag.strip_prefix('/') {
                let _ = stripped;
                assert_eq!(
                    stack.pop().as_deref(),
                    Some(name.as_str()),
                    "unbalanced </{name}>"
                );
            } else if !tag.ends_with('/') {
                stack.push(name);
            }
        }
        assert!(stack.is_empty(), "unclosed: {stack:?}");
        for w in words {
            assert!(svg.contains(w), "missing {w:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_is_one_line_without_backslashes() {
        assert_eq!(
            finish("<text>\na\\b\tc\r\n</text>\n".into()),
            "<text>a&#92;b c</text>"
        );
    }

    #[test]
    fn ticks_read_as_numbers() {
        assert_eq!(tick(0.30000000000000004), "0.3");
        assert_eq!(tick(-0.0001), "0");
        assert_eq!(tick(1_200_000.0), "1.2M");
        assert_eq!(tick(25_000.0), "25k");
        assert_eq!(tick(7.0), "7");
    }

    #[test]
    fn viridis_ends() {
        assert_eq!(viridis(0.0), plotters::style::RGBColor(68, 1, 84));
        assert_eq!(viridis(1.0), plotters::style::RGBColor(254, 232, 37));
        assert_eq!(viridis(f64::NAN), viridis(0.0));
    }

    #[test]
    fn padded_ranges_are_drawable() {
        assert_eq!(padded(0.0, 0.0, 0.0), (0.0, 1.0));
        let (a, b) = padded(5.0, 5.0, 0.0);
        assert!(a < 5.0 && b > 5.0);
        assert_eq!(padded(0.0, 10.0, 0.1), (-1.0, 11.0));
    }
}
