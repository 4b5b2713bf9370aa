//! Grouped bars: one group per category, one bar per series (lifetimes'
//! `plot_period_transactions`: customers by number of repeat purchases, actual against model).

use crate::*;
use plotters::prelude::*;

/// Bars of `series` (name, one value per category) over `categories`, side by side in each
/// category, with a legend. Values must be finite and >= 0.
pub fn grouped_bars(
    labels: Labels,
    categories: &[String],
    series: &[(String, Vec<f64>)],
) -> Result<String> {
    if categories.is_empty() || series.is_empty() {
        return Err(invalid("the bar chart has no categories or no series"));
    }
    check_size("bar chart", categories.len() * series.len())?;
    let mut top = 0.0f64;
    for (name, values) in series {
        if values.len() != categories.len() {
            return Err(invalid(format!(
                "series {name:?} has {} values for {} categories",
                values.len(),
                categories.len()
            )));
        }
        for &v in values {
            if check_finite("a bar's value", v)? < 0.0 {
                return Err(invalid(format!("a bar's value must be >= 0, got {v}")));
            }
            top = top.max(v);
        }
    }
    let n = categories.len() as f64;
    let k = series.len() as f64;
    // Each category is one unit wide; its bars share 80% of it.
    let width = 0.8 / k;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(labels.title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(-0.5..(n - 0.5), 0.0..padded(0.0, top, 0.0).1 * 1.08)
            .map_err(draw_err)?;
        let name = |v: &f64| {
            let i = v.round();
            if (v - i).abs() < 1e-9 && i >= 0.0 && (i as usize) < categories.len() {
                categories[i as usize].clone()
            } else {
                String::new()
            }
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .max_light_lines(0)
            .bold_line_style(BLACK.mix(0.1))
            .x_labels(2 * categories.len() + 1)
            .x_label_formatter(&name)
            .y_label_formatter(&|v| tick(*v))
            .x_desc(labels.x)
            .y_desc(labels.y)
            .axis_desc_style(("sans-serif", 17))
            .label_style(("sans-serif", 15))
            .draw()
            .map_err(draw_err)?;
        for (s, (series_name, values)) in series.iter().enumerate() {
            let fill = colour(s);
            let offset = -0.4 + width * s as f64;
            chart
                .draw_series(values.iter().enumerate().map(|(i, &v)| {
                    let x = i as f64 + offset;
                    Rectangle::new([(x, 0.0), (x + width * 0.95, v)], fill.filled())
                }))
                .map_err(draw_err)?
                .label(series_name.as_str())
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], fill.filled()));
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        root.present().map_err(draw_err)?;
    }
    Ok(finish(svg))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::assert_svg;

    #[test]
    fn bars_with_a_legend() {
        let cats: Vec<String> = ["0", "1", "2", "3+"].map(String::from).to_vec();
        let series = vec![
            ("actual".to_string(), vec![1400.0, 400.0, 200.0, 350.0]),
            ("model".to_string(), vec![1390.0, 420.0, 190.0, 351.0]),
        ];
        let l = Labels {
            title: "Repeat purchases per customer",
            x: "repeat purchases in the calibration period",
            y: "customers",
        };
        let svg = grouped_bars(l, &cats, &series).unwrap();
        assert_svg(
            &svg,
            &[
                "Repeat purchases per customer",
                "actual",
                "model",
                "3+",
                "customers",
            ],
        );
        // 8 bars, 2 legend swatches, background and legend box.
        let rects = svg.matches("<rect").count();
        assert!((10..=14).contains(&rects), "{rects}");
    }

    #[test]
    fn mismatched_or_negative_bars_are_refused() {
        let l = Labels {
            title: "t",
            x: "x",
            y: "y",
        };
        let cats = vec!["a".to_string()];
        assert!(grouped_bars(l, &cats, &[("s".into(), vec![1.0, 2.0])]).is_err());
        assert!(grouped_bars(l, &cats, &[("s".into(), vec![-1.0])]).is_err());
        assert!(grouped_bars(l, &cats, &[("s".into(), vec![f64::INFINITY])]).is_err());
        assert!(grouped_bars(l, &[], &[]).is_err());
        // All zero: still a chart.
        assert_svg(
            &grouped_bars(l, &cats, &[("s".into(), vec![0.0])]).unwrap(),
            &["t"],
        );
    }
}
