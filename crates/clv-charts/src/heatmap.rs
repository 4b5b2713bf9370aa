//! Matrices: a value over a numeric (x, y) grid with a colour bar (lifetimes' frequency/recency and
//! P(alive) matrices), and counts over two category axes (tier migration).

use crate::*;
use plotters::prelude::*;

/// One grid cell: its centre and its value. Cells absent from a grid are left blank (histories
/// no customer can have).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cell {
    pub x: f64,
    pub y: f64,
    pub value: f64,
}

/// A heatmap of `cells`, each `x_step` wide and `y_step` high, coloured by value (viridis, low
/// dark, high yellow) with a colour bar titled `value_label`. As lifetimes draws its matrices,
/// `y` (frequency) grows downwards from the top.
pub fn heatmap(
    labels: Labels,
    value_label: &str,
    cells: &[Cell],
    x_step: f64,
    y_step: f64,
) -> Result<String> {
    check_size("heatmap", cells.len())?;
    if cells.is_empty() {
        return Err(invalid("the heatmap has no cells"));
    }
    for (what, s) in [("x_step", x_step), ("y_step", y_step)] {
        if check_finite(what, s)? <= 0.0 {
            return Err(invalid(format!("{what} must be > 0, got {s}")));
        }
    }
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    let (mut x0, mut x1, mut y0, mut y1) = (lo, hi, lo, hi);
    for c in cells {
        check_finite("a cell's value", c.value)?;
        check_finite("a cell's x", c.x)?;
        check_finite("a cell's y", c.y)?;
        lo = lo.min(c.value);
        hi = hi.max(c.value);
        x0 = x0.min(c.x);
        x1 = x1.max(c.x);
        y0 = y0.min(c.y);
        y1 = y1.max(c.y);
    }
    let span = if hi > lo { hi - lo } else { 1.0 };
    let shade = |v: f64| viridis((v - lo) / span);

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        let root = root
            .titled(labels.title, ("sans-serif", 22))
            .map_err(draw_err)?;
        let (plot, bar) = root.split_horizontally(WIDTH - 110);
        let mut chart = ChartBuilder::on(&plot)
            .margin(8)
            .x_label_area_size(44)
            .y_label_area_size(56)
            .build_cartesian_2d(
                (x0 - x_step / 2.0)..(x1 + x_step / 2.0),
                // y grows downwards: drawn at -y, labelled as y.
                (-(y1 + y_step / 2.0))..(-(y0 - y_step / 2.0)),
            )
            .map_err(draw_err)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc(labels.x)
            .y_desc(labels.y)
            .x_label_formatter(&|v| tick(*v))
            .y_label_formatter(&|v| tick(-*v))
            .axis_desc_style(("sans-serif", 17))
            .label_style(("sans-serif", 15))
            .draw()
            .map_err(draw_err)?;
        chart
            .draw_series(cells.iter().map(|c| {
                Rectangle::new(
                    [
                        (c.x - x_step / 2.0, -c.y - y_step / 2.0),
                        (c.x + x_step / 2.0, -c.y + y_step / 2.0),
                    ],
                    shade(c.value).filled(),
                )
            }))
            .map_err(draw_err)?;

        // The colour bar: 64 bands from the lowest to the highest value.
        let (vlo, vhi) = if hi > lo {
            (lo, hi)
        } else {
            padded(lo, hi, 0.0)
        };
        let mut legend = ChartBuilder::on(&bar)
            .margin_top(8)
            .margin_bottom(52)
            .margin_right(8)
            .y_label_area_size(60)
            .caption(value_label, ("sans-serif", 16))
            .build_cartesian_2d(0.0..1.0, vlo..vhi)
            .map_err(draw_err)?;
        legend
            .configure_mesh()
            .disable_mesh()
            .disable_x_axis()
            .y_labels(6)
            .label_style(("sans-serif", 14))
            .y_label_formatter(&|v| tick(*v))
            .draw()
            .map_err(draw_err)?;
        let band = (vhi - vlo) / 64.0;
        legend
            .draw_series((0..64).map(|i| {
                let a = vlo + band * i as f64;
                Rectangle::new([(0.0, a), (1.0, a + band)], shade(a + band / 2.0).filled())
            }))
            .map_err(draw_err)?;
        root.present().map_err(draw_err)?;
    }
    Ok(finish(svg))
}

/// Counts over two category axes (rows down the side, columns along the bottom), each cell
/// shaded by its share of its row and labelled with the count: tier migration between two runs.
pub fn count_matrix(
    labels: Labels,
    rows: &[String],
    columns: &[String],
    counts: &[Vec<f64>],
) -> Result<String> {
    if rows.is_empty() || columns.is_empty() {
        return Err(invalid("the matrix has no rows or no columns"));
    }
    check_size("matrix", rows.len() * columns.len())?;
    if counts.len() != rows.len() || counts.iter().any(|r| r.len() != columns.len()) {
        return Err(invalid(format!(
            "the counts must be {} rows of {} columns",
            rows.len(),
            columns.len()
        )));
    }
    for r in counts {
        for &c in r {
            if check_finite("a count", c)? < 0.0 {
                return Err(invalid(format!("a count must be >= 0, got {c}")));
            }
        }
    }
    let (nr, nc) = (rows.len() as i32, columns.len() as i32);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(labels.title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(48)
            .y_label_area_size(110)
            // plotters' integer ranges include their end: 0..n-1 is n categories.
            .build_cartesian_2d((0..nc - 1).into_segmented(), (0..nr - 1).into_segmented())
            .map_err(draw_err)?;
        let flip = |v: &SegmentValue<i32>| match v {
            SegmentValue::CenterOf(i) => SegmentValue::CenterOf(nr - 1 - i),
            SegmentValue::Exact(i) => SegmentValue::Exact(nr - 1 - i),
            SegmentValue::Last => SegmentValue::Last,
        };
        let name = |names: &[String], v: &SegmentValue<i32>| match v {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
                names.get(*i as usize).cloned().unwrap_or_default()
            }
            SegmentValue::Last => String::new(),
        };
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc(labels.x)
            .y_desc(labels.y)
            .x_labels(columns.len())
            .y_labels(rows.len())
            .x_label_formatter(&|v| name(columns, v))
            // The first row at the top: row i is drawn at nr - 1 - i.
            .y_label_formatter(&|v| name(rows, &flip(v)))
            .axis_desc_style(("sans-serif", 17))
            .label_style(("sans-serif", 15))
            .draw()
            .map_err(draw_err)?;
        for (i, row) in counts.iter().enumerate() {
            let total: f64 = row.iter().sum();
            for (j, &c) in row.iter().enumerate() {
                let share = if total > 0.0 { c / total } else { 0.0 };
                let (i, j) = (nr - 1 - i as i32, j as i32);
                let fill = viridis(share);
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [
                            (SegmentValue::Exact(j), SegmentValue::Exact(i)),
                            (SegmentValue::Exact(j + 1), SegmentValue::Exact(i + 1)),
                        ],
                        fill.filled(),
                    )))
                    .map_err(draw_err)?;
                // Dark text on the light end of the map, white on the dark end.
                let ink = if share > 0.6 { BLACK } else { WHITE };
                let text = format!("{} ({:.0}%)", tick(c), 100.0 * share);
                chart
                    .draw_series(std::iter::once(Text::new(
                        text,
                        (SegmentValue::CenterOf(j), SegmentValue::CenterOf(i)),
                        ("sans-serif", 17).into_font().color(&ink).pos(
                            plotters::style::text_anchor::Pos::new(
                                plotters::style::text_anchor::HPos::Center,
                                plotters::style::text_anchor::VPos::Center,
                            ),
                        ),
                    )))
                    .map_err(draw_err)?;
            }
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
            title: "Expected purchases in the next 52 weeks",
            x: "recency (weeks)",
            y: "frequency (repeat purchases)",
        }
    }

    #[test]
    fn a_grid_draws_one_rectangle_per_cell() {
        let cells: Vec<Cell> = (0..5)
            .flat_map(|f| {
                (0..4).map(move |r| Cell {
                    x: r as f64 * 10.0,
                    y: f as f64,
                    value: (f * r) as f64,
                })
            })
            .collect();
        let svg = heatmap(labels(), "purchases", &cells, 10.0, 1.0).unwrap();
        assert_svg(
            &svg,
            &[
                "Expected purchases in the next 52 weeks",
                "recency (weeks)",
                "purchases",
            ],
        );
        // 20 cells + 64 colour-bar bands + the white background rectangles.
        let rects = svg.matches("<rect").count();
        assert!((20 + 64..20 + 64 + 6).contains(&rects), "{rects}");
        // Lowest value darkest (viridis start), highest yellow.
        assert!(svg.contains("#440154"));
        assert!(svg.contains("#FEE825"));
    }

    #[test]
    fn a_flat_grid_and_one_cell_still_draw() {
        let one = [Cell {
            x: 0.0,
            y: 0.0,
            value: 0.5,
        }];
        assert_svg(
            &heatmap(labels(), "P(alive)", &one, 1.0, 1.0).unwrap(),
            &["P(alive)"],
        );
    }

    #[test]
    fn bad_grids_are_refused() {
        let nan = [Cell {
            x: 0.0,
            y: 0.0,
            value: f64::NAN,
        }];
        assert!(matches!(
            heatmap(labels(), "v", &nan, 1.0, 1.0),
            Err(ChartError::Invalid(_))
        ));
        assert!(matches!(
            heatmap(labels(), "v", &[], 1.0, 1.0),
            Err(ChartError::Invalid(_))
        ));
        let ok = [Cell {
            x: 0.0,
            y: 0.0,
            value: 1.0,
        }];
        assert!(matches!(
            heatmap(labels(), "v", &ok, 0.0, 1.0),
            Err(ChartError::Invalid(_))
        ));
    }

    #[test]
    fn migration_counts_are_written_in_the_cells() {
        let tiers: Vec<String> = ["high", "medium", "low"].map(String::from).to_vec();
        let counts = vec![
            vec![80.0, 20.0, 0.0],
            vec![10.0, 170.0, 20.0],
            vec![0.0, 30.0, 270.0],
        ];
        let l = Labels {
            title: "Tier migration",
            x: "tier in run 2",
            y: "tier in run 1",
        };
        let svg = count_matrix(l, &tiers, &tiers, &counts).unwrap();
        assert_svg(
            &svg,
            &[
                "Tier migration",
                "80 (80%)",
                "170 (85%)",
                "270 (90%)",
                "medium",
            ],
        );
        let bad = vec![vec![1.0, 2.0]];
        assert!(count_matrix(l, &tiers, &tiers, &bad).is_err());
        let negative = vec![vec![-1.0; 3]; 3];
        assert!(count_matrix(l, &tiers, &tiers, &negative).is_err());
    }
}
