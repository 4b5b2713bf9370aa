//! Lines over a numeric x axis, with optional vertical guides: calibration against holdout
//! purchases, the CLV concentration curve with its tier cut points, one customer's P(alive)
//! with a guide at each purchase.

use crate::*;
use plotters::prelude::*;

/// One series: its name in the legend, its points in x order, and whether to mark each point.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub markers: bool,
}

/// A vertical dashed line at `x`, with an optional label at its top.
#[derive(Debug, Clone, PartialEq)]
pub struct Guide {
    pub x: f64,
    pub label: Option<String>,
}

/// Text centred at (x, y) in data coordinates.
#[derive(Debug, Clone, PartialEq)]
pub struct Note {
    pub x: f64,
    pub y: f64,
    pub text: String,
}

/// The legend goes in the corner of the plot with the fewest points and notes under it (each
/// corner region a third wide and a quarter high; a note weighs as much as 100 points).
fn legend_corner(
    series: &[Line],
    notes: &[Note],
    (xa, xb): (f64, f64),
    (ya, yb): (f64, f64),
) -> SeriesLabelPosition {
    let corners = [
        (SeriesLabelPosition::UpperLeft, false, true),
        (SeriesLabelPosition::UpperRight, true, true),
        (SeriesLabelPosition::LowerRight, true, false),
        (SeriesLabelPosition::LowerLeft, false, false),
    ];
    let inside = |right: bool, upper: bool, (x, y): (f64, f64)| {
        let fx = (x - xa) / (xb - xa);
        let fy = (y - ya) / (yb - ya);
        (if right { fx > 0.66 } else { fx < 0.34 }) && (if upper { fy > 0.75 } else { fy < 0.25 })
    };
    let crowd = |right: bool, upper: bool| {
        let points = series
            .iter()
            .flat_map(|s| s.points.iter())
            .filter(|&&p| inside(right, upper, p))
            .count();
        let texts = notes
            .iter()
            .filter(|n| inside(right, upper, (n.x, n.y)))
            .count();
        points + 100 * texts
    };
    corners
        .into_iter()
        .min_by_key(|&(_, right, upper)| crowd(right, upper))
        .map(|c| c.0)
        .unwrap_or(SeriesLabelPosition::UpperLeft)
}

/// A line chart. `x_range`/`y_range` fix an axis (e.g. P(alive) in [0, 1]); otherwise it spans
/// the data with 5% padding. A legend of the named series is drawn when there are two or more,
/// in the emptiest corner (a series with an empty name is left out: label it with a note).
pub fn lines(
    labels: Labels,
    series: &[Line],
    guides: &[Guide],
    notes: &[Note],
    x_range: Option<(f64, f64)>,
    y_range: Option<(f64, f64)>,
) -> Result<String> {
    let points: usize = series.iter().map(|s| s.points.len()).sum();
    check_size("line chart", points + guides.len() + notes.len())?;
    for n in notes {
        check_finite("a note's x", n.x)?;
        check_finite("a note's y", n.y)?;
    }
    if points == 0 {
        return Err(invalid("the line chart has no points"));
    }
    let (mut x0, mut x1, mut y0, mut y1) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    for s in series {
        for &(x, y) in &s.points {
            check_finite("a point's x", x)?;
            check_finite("a point's y", y)?;
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
    }
    for g in guides {
        check_finite("a guide's x", g.x)?;
        x0 = x0.min(g.x);
        x1 = x1.max(g.x);
    }
    let fixed = |r: Option<(f64, f64)>, what: &str| -> Result<Option<(f64, f64)>> {
        match r {
            Some((a, b)) if !(a.is_finite() && b.is_finite() && a < b) => Err(invalid(format!(
                "the {what} range must be finite and increasing"
            ))),
            r => Ok(r),
        }
    };
    let (xa, xb) = fixed(x_range, "x")?.unwrap_or_else(|| padded(x0, x1, 0.03));
    let (ya, yb) = fixed(y_range, "y")?.unwrap_or_else(|| padded(y0, y1, 0.05));

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(labels.title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(xa..xb, ya..yb)
            .map_err(draw_err)?;
        chart
            .configure_mesh()
            .max_light_lines(0)
            .bold_line_style(BLACK.mix(0.1))
            .x_label_formatter(&|v| tick(*v))
            .y_label_formatter(&|v| tick(*v))
            .x_desc(labels.x)
            .y_desc(labels.y)
            .axis_desc_style(("sans-serif", 17))
            .label_style(("sans-serif", 15))
            .draw()
            .map_err(draw_err)?;
        let guide_style = ShapeStyle::from(&BLACK.mix(0.35)).stroke_width(1);
        for g in guides {
            chart
                .draw_series(DashedLineSeries::new(
                    [(g.x, ya), (g.x, yb)],
                    4,
                    3,
                    guide_style,
                ))
                .map_err(draw_err)?;
            if let Some(text) = &g.label {
                chart
                    .draw_series(std::iter::once(Text::new(
                        text.clone(),
                        (g.x, yb),
                        ("sans-serif", 15).into_font().color(&BLACK.mix(0.7)),
                    )))
                    .map_err(draw_err)?;
            }
        }
        for (i, s) in series.iter().enumerate() {
            let c = colour(i);
            let style = ShapeStyle::from(&c).stroke_width(2);
            let drawn = chart
                .draw_series(LineSeries::new(s.points.iter().copied(), style))
                .map_err(draw_err)?;
            if !s.name.is_empty() {
                drawn
                    .label(s.name.as_str())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style));
            }
            if s.markers {
                chart
                    .draw_series(s.points.iter().map(|&p| Circle::new(p, 3, c.filled())))
                    .map_err(draw_err)?;
            }
        }
        let centred = ("sans-serif", 15).into_font().color(&BLACK.mix(0.75)).pos(
            plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Center,
                plotters::style::text_anchor::VPos::Center,
            ),
        );
        chart
            .draw_series(
                notes
                    .iter()
                    .map(|n| Text::new(n.text.clone(), (n.x, n.y), centred.clone())),
            )
            .map_err(draw_err)?;
        if series.iter().filter(|s| !s.name.is_empty()).count() > 1 {
            draw_legend(&mut chart, legend_corner(series, notes, (xa, xb), (ya, yb)))?;
        }
        root.present().map_err(draw_err)?;
    }
    Ok(finish(svg))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::assert_svg;

    fn labels() -> Labels<'static> {
        Labels {
            title: "Actual vs predicted purchases in the holdout period",
            x: "purchases in the calibration period",
            y: "mean purchases in the holdout period",
        }
    }

    #[test]
    fn two_series_with_markers_and_guides() {
        let s = vec![
            Line {
                name: "predicted".into(),
                points: (0..7).map(|i| (i as f64, 0.2 + 0.5 * i as f64)).collect(),
                markers: true,
            },
            Line {
                name: "actual".into(),
                points: (0..7).map(|i| (i as f64, 0.1 + 0.55 * i as f64)).collect(),
                markers: true,
            },
        ];
        let g = [Guide {
            x: 3.0,
            label: Some("cut <20%>".into()),
        }];
        let n = [Note {
            x: 1.0,
            y: 1.0,
            text: "a note".into(),
        }];
        let svg = lines(labels(), &s, &g, &n, None, None).unwrap();
        assert_svg(
            &svg,
            &["predicted", "actual", "cut &lt;20%&gt;", "holdout period"],
        );
        assert_eq!(svg.matches("<circle").count(), 14);
        assert_eq!(svg.matches("<polyline").count() >= 2, true);
    }

    #[test]
    fn fixed_ranges_and_refusals() {
        let one = vec![Line {
            name: "P(alive)".into(),
            points: vec![(0.0, 1.0)],
            markers: false,
        }];
        let svg = lines(labels(), &one, &[], &[], None, Some((0.0, 1.0))).unwrap();
        assert_svg(&svg, &[]);
        assert!(!svg.contains("P(alive)"), "no legend for one series");
        assert!(lines(labels(), &one, &[], &[], None, Some((1.0, 0.0))).is_err());
        let nan = vec![Line {
            name: "x".into(),
            points: vec![(0.0, f64::NAN)],
            markers: false,
        }];
        assert!(lines(labels(), &nan, &[], &[], None, None).is_err());
        assert!(lines(labels(), &[], &[], &[], None, None).is_err());
        let g = [Guide {
            x: f64::INFINITY,
            label: None,
        }];
        assert!(lines(labels(), &one, &g, &[], None, None).is_err());
        let bad_note = [Note {
            x: f64::NAN,
            y: 0.0,
            text: "x".into(),
        }];
        assert!(lines(labels(), &one, &[], &bad_note, None, None).is_err());
    }

    #[test]
    fn the_legend_avoids_the_data() {
        // A curve hugging the upper left: the legend goes to the lower right.
        let s = vec![
            Line {
                name: "a".into(),
                points: vec![(0.0, 0.9), (0.1, 1.0), (1.0, 1.0)],
                markers: false,
            },
            Line {
                name: "b".into(),
                points: vec![(0.0, 0.95), (0.2, 0.98)],
                markers: false,
            },
        ];
        assert_eq!(
            legend_corner(&s, &[], (0.0, 1.0), (0.0, 1.0)),
            SeriesLabelPosition::LowerRight
        );
        // ... unless a note is there.
        let n = [Note {
            x: 0.9,
            y: 0.1,
            text: "low".into(),
        }];
        assert_eq!(
            legend_corner(&s, &n, (0.0, 1.0), (0.0, 1.0)),
            SeriesLabelPosition::LowerLeft
        );
    }
}
