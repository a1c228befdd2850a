//! Charts as SVG, drawn with plotters (SVG backend, no fonts loaded: text stays `<text>` for
//! the browser to render). Axis and text colours are fixed marker colours that the site's
//! stylesheet re-colours for dark mode (CSS rules override SVG presentation attributes).

use plotters::prelude::*;

/// Axis and text colour; the stylesheet maps `#202021` to the theme's foreground.
pub const INK: RGBColor = RGBColor(0x20, 0x20, 0x21);
/// Grid colour; mapped to the theme's grid colour.
pub const GRID: RGBColor = RGBColor(0xD0, 0xD0, 0xD1);
/// Legend background; mapped to the theme's background.
pub const PAPER: RGBColor = RGBColor(0xFF, 0xFF, 0xFE);
/// Series colours, readable on light and dark backgrounds.
pub const PALETTE: [RGBColor; 8] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0xe3, 0x77, 0xc2),
    RGBColor(0x17, 0xbe, 0xcf),
];
/// Change-point marker colour.
pub const MARK: RGBColor = RGBColor(0xd6, 0x27, 0x28);

type DrawResult<T> = Result<T, Box<dyn std::error::Error>>;

/// A display unit for latencies given in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct Unit {
    /// Name (`ns`, `µs`, `ms`, `s`, `instructions`).
    pub name: &'static str,
    /// Multiply a value by this to get it in this unit.
    pub factor: f64,
}

impl Unit {
    /// The unit that shows latencies up to `max_ms` with readable numbers.
    pub fn for_ms(max_ms: f64) -> Self {
        let (name, factor) = if max_ms < 0.001 {
            ("ns", 1e6)
        } else if max_ms < 1.0 {
            ("µs", 1e3)
        } else if max_ms < 1_000.0 {
            ("ms", 1.0)
        } else {
            ("s", 1e-3)
        };
        Self { name, factor }
    }

    /// Instruction counts, as they are.
    pub fn instructions() -> Self {
        Self {
            name: "instructions",
            factor: 1.0,
        }
    }
}

/// A number with a few significant digits and an SI suffix for large counts.
pub fn short(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{:.2}G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn padded(lo: f64, hi: f64) -> (f64, f64) {
    let span = (hi - lo).abs().max(hi.abs() * 0.05).max(1e-12);
    ((lo - span * 0.1).max(0.0), hi + span * 0.1)
}

/// A tiny line of `values` (no axes) for the overview.
pub fn sparkline(values: &[f64]) -> DrawResult<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (120, 28)).into_drawing_area();
        let (lo, hi) = min_max(values);
        let (lo, hi) = padded(lo, hi);
        let n = values.len().max(2);
        let mut chart = ChartBuilder::on(&root)
            .margin(3)
            .build_cartesian_2d(0f64..(n - 1) as f64, lo..hi)?;
        chart.draw_series(LineSeries::new(
            values.iter().enumerate().map(|(i, &v)| (i as f64, v)),
            PALETTE[0].stroke_width(1),
        ))?;
        if let Some((i, &v)) = values.iter().enumerate().next_back() {
            chart.draw_series(std::iter::once(Circle::new(
                (i as f64, v),
                2,
                PALETTE[0].filled(),
            )))?;
        }
        root.present()?;
    }
    Ok(svg)
}

/// A point drawn on a chart, in the SVG's pixel coordinates, for the page's link overlay.
#[derive(Debug, Clone, Copy)]
pub struct Pixel {
    /// Horizontal position, pixels from the left.
    pub x: i32,
    /// Vertical position, pixels from the top.
    pub y: i32,
}

/// Input of [`history_chart`]: one benchmark over runs.
pub struct HistoryInput<'a> {
    /// Title above the chart.
    pub title: &'a str,
    /// Unit of the y axis.
    pub unit: Unit,
    /// X labels (one per point: short commit).
    pub labels: &'a [String],
    /// Lines: name and the value at each point (None where absent), in ms or instructions.
    pub lines: &'a [(&'a str, Vec<Option<f64>>)],
    /// Noise band (low, high) at each point, in the same unit as the lines.
    pub band: &'a [Option<(f64, f64)>],
    /// What the band is, for the legend.
    pub band_label: &'a str,
    /// Indexes of change points.
    pub change_points: &'a [usize],
}

/// Width and height of the history chart.
pub const HISTORY_SIZE: (u32, u32) = (960, 380);

/// Lines over runs with the noise band shaded and change points marked; also returns where
/// each point of the first line was drawn.
pub fn history_chart(input: &HistoryInput) -> DrawResult<(String, Vec<Option<Pixel>>)> {
    let mut svg = String::new();
    let mut pixels = Vec::new();
    {
        let root = SVGBackend::with_string(&mut svg, HISTORY_SIZE).into_drawing_area();
        let f = input.unit.factor;
        let all = input
            .lines
            .iter()
            .flat_map(|(_, v)| v.iter().flatten().copied())
            .chain(input.band.iter().flatten().flat_map(|&(a, b)| [a, b]));
        let (lo, hi) = min_max(&all.map(|v| v * f).collect::<Vec<_>>());
        let (lo, hi) = padded(lo, hi);
        let n = input.labels.len();
        let labels = input.labels;
        let mut chart = ChartBuilder::on(&root)
            .caption(input.title, ("sans-serif", 18).into_font().color(&INK))
            .margin(12)
            .x_label_area_size(48)
            .y_label_area_size(70)
            .build_cartesian_2d(-0.5f64..(n as f64 - 0.5).max(0.5), lo..hi)?;
        let x_fmt = |x: &f64| {
            let i = x.round();
            if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < n {
                labels[i as usize].clone()
            } else {
                String::new()
            }
        };
        let y_desc = format!("latency ({})", input.unit.name);
        chart
            .configure_mesh()
            .x_desc("run (commit), oldest first")
            .y_desc(if input.unit.name == "instructions" {
                "instructions (count)"
            } else {
                y_desc.as_str()
            })
            .x_labels(n.min(12))
            .x_label_formatter(&x_fmt)
            .y_label_formatter(&|v| short(*v))
            .axis_style(INK)
            .bold_line_style(GRID)
            .light_line_style(TRANSPARENT)
            .label_style(("sans-serif", 14).into_font().color(&INK))
            .axis_desc_style(("sans-serif", 15).into_font().color(&INK))
            .draw()?;
        // The band: one polygon per contiguous stretch of points that have one.
        let mut stretch: Vec<(usize, (f64, f64))> = Vec::new();
        let mut band_labelled = false;
        let flush = |stretch: &mut Vec<(usize, (f64, f64))>,
                     chart: &mut ChartContext<_, _>,
                     labelled: &mut bool|
         -> DrawResult<()> {
            if stretch.len() >= 2 {
                let mut poly: Vec<(f64, f64)> = stretch
                    .iter()
                    .map(|(i, (_, h))| (*i as f64, h * f))
                    .collect();
                poly.extend(stretch.iter().rev().map(|(i, (l, _))| (*i as f64, l * f)));
                let s = chart.draw_series(std::iter::once(Polygon::new(
                    poly,
                    PALETTE[0].mix(0.15).filled(),
                )))?;
                if !*labelled {
                    s.label(format!("noise band ({})", input.band_label))
                        .legend(|(x, y)| {
                            Rectangle::new(
                                [(x, y - 5), (x + 16, y + 5)],
                                PALETTE[0].mix(0.15).filled(),
                            )
                        });
                    *labelled = true;
                }
            }
            stretch.clear();
            Ok(())
        };
        for (i, b) in input.band.iter().enumerate() {
            match b {
                Some(b) => stretch.push((i, *b)),
                None => flush(&mut stretch, &mut chart, &mut band_labelled)?,
            }
        }
        flush(&mut stretch, &mut chart, &mut band_labelled)?;
        for (k, (name, values)) in input.lines.iter().enumerate() {
            let color = PALETTE[k % PALETTE.len()];
            let pts: Vec<(f64, f64)> = values
                .iter()
                .enumerate()
                .filter_map(|(i, v)| v.map(|v| (i as f64, v * f)))
                .collect();
            if pts.is_empty() {
                continue;
            }
            chart
                .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))?
                .label(*name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                });
            let radius = if pts.len() > 100 { 2 } else { 3 };
            chart.draw_series(pts.iter().map(|&p| Circle::new(p, radius, color.filled())))?;
        }
        if let Some((_, first)) = input.lines.first() {
            pixels = first
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    v.map(|v| {
                        let (x, y) = chart.backend_coord(&(i as f64, v * f));
                        Pixel { x, y }
                    })
                })
                .collect();
        }
        for (k, &cp) in input.change_points.iter().enumerate() {
            let x = cp as f64 - 0.5;
            let s = chart.draw_series(std::iter::once(PathElement::new(
                vec![(x, lo), (x, hi)],
                MARK.stroke_width(2),
            )))?;
            if k == 0 {
                s.label("change point").legend(|(x, y)| {
                    PathElement::new(vec![(x + 8, y - 6), (x + 8, y + 6)], MARK.stroke_width(2))
                });
            }
            chart.draw_series(std::iter::once(TriangleMarker::new(
                (x, hi),
                6,
                MARK.filled(),
            )))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(PAPER.mix(0.85))
            .border_style(GRID)
            .label_font(("sans-serif", 14).into_font().color(&INK))
            .draw()?;
        root.present()?;
    }
    Ok((svg, pixels))
}

/// An HDR percentile distribution: latency against percentile, the percentile axis on a log
/// scale of 1/(1 - q) so that 90%, 99%, 99.9% are evenly spaced. Each line is a name and
/// (quantile, latency in ms) pairs.
pub fn percentile_chart(title: &str, lines: &[(String, Vec<(f64, f64)>)]) -> DrawResult<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 400)).into_drawing_area();
        let max_ms = lines
            .iter()
            .flat_map(|(_, v)| v.iter().map(|p| p.1))
            .fold(0.0, f64::max);
        let unit = Unit::for_ms(max_ms);
        let inv = |q: f64| 1.0 / (1.0 - q.min(0.999_999));
        let max_x = lines
            .iter()
            .flat_map(|(_, v)| v.iter().map(|p| inv(p.0)))
            .fold(10.0, f64::max);
        let min_y = lines
            .iter()
            .flat_map(|(_, v)| v.iter().map(|p| p.1 * unit.factor))
            .fold(f64::INFINITY, f64::min);
        let (y_lo, y_hi) = (
            min_y.max(1e-9) * 0.8,
            (max_ms * unit.factor).max(1e-9) * 1.25,
        );
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18).into_font().color(&INK))
            .margin(12)
            .x_label_area_size(48)
            .y_label_area_size(70)
            .build_cartesian_2d((1f64..max_x * 1.5).log_scale(), (y_lo..y_hi).log_scale())?;
        chart
            .configure_mesh()
            .x_desc("percentile (log scale of 1/(1-q))")
            .y_desc(format!("latency ({}, log scale)", unit.name))
            .x_label_formatter(&|x| {
                let p = (1.0 - 1.0 / x) * 100.0;
                let digits = if p < 99.0 {
                    0
                } else {
                    ((1.0 / (100.0 - p)).log10().ceil() as usize).min(6)
                };
                format!("{p:.digits$}%")
            })
            .y_label_formatter(&|v| short(*v))
            .axis_style(INK)
            .bold_line_style(GRID)
            .light_line_style(TRANSPARENT)
            .label_style(("sans-serif", 14).into_font().color(&INK))
            .axis_desc_style(("sans-serif", 15).into_font().color(&INK))
            .draw()?;
        for (k, (name, pts)) in lines.iter().enumerate() {
            let color = PALETTE[k % PALETTE.len()];
            chart
                .draw_series(LineSeries::new(
                    pts.iter().map(|&(q, v)| (inv(q), v * unit.factor)),
                    color.stroke_width(2),
                ))?
                .label(name.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(PAPER.mix(0.85))
            .border_style(GRID)
            .label_font(("sans-serif", 14).into_font().color(&INK))
            .draw()?;
        root.present()?;
    }
    Ok(svg)
}

/// One line of a [`time_chart`]: its name and (x, y) points; a `None` y breaks the line.
pub type Series<'a> = (&'a str, Vec<(f64, Option<f64>)>);

/// Input of [`time_chart`]: lines over seconds of a run.
pub struct TimeInput<'a> {
    /// Title above the chart.
    pub title: &'a str,
    /// X axis description, with its unit.
    pub x_desc: &'a str,
    /// Y axis description, with its unit.
    pub y_desc: &'a str,
    /// Lines: name and (x, y) points; a `None` y breaks the line (nothing measured then).
    pub lines: &'a [Series<'a>],
    /// A vertical marker (x, legend), for example the end of a warm-up.
    pub marker: Option<(f64, &'a str)>,
}

/// Width and height of a time chart.
pub const TIME_SIZE: (u32, u32) = (960, 300);

/// Lines over the seconds of a run (a load test's rates, latencies, requests in flight, the
/// target's resources), the y axis from 0.
pub fn time_chart(input: &TimeInput) -> DrawResult<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, TIME_SIZE).into_drawing_area();
        let xs: Vec<f64> = input
            .lines
            .iter()
            .flat_map(|(_, pts)| pts.iter().map(|p| p.0))
            .collect();
        let ys: Vec<f64> = input
            .lines
            .iter()
            .flat_map(|(_, pts)| pts.iter().filter_map(|p| p.1))
            .collect();
        let (x_lo, x_hi) = min_max(&xs);
        let x_hi = if x_hi > x_lo { x_hi } else { x_lo + 1.0 };
        let (_, y_hi) = min_max(&ys);
        let y_hi = if y_hi > 0.0 { y_hi * 1.15 } else { 1.0 };
        let mut chart = ChartBuilder::on(&root)
            .caption(input.title, ("sans-serif", 17).into_font().color(&INK))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(70)
            .build_cartesian_2d(x_lo..x_hi, 0f64..y_hi)?;
        chart
            .configure_mesh()
            .x_desc(input.x_desc)
            .y_desc(input.y_desc)
            .x_labels(12)
            .y_labels(6)
            .x_label_formatter(&|v| short(*v))
            .y_label_formatter(&|v| short(*v))
            .axis_style(INK)
            .bold_line_style(GRID)
            .light_line_style(TRANSPARENT)
            .label_style(("sans-serif", 13).into_font().color(&INK))
            .axis_desc_style(("sans-serif", 14).into_font().color(&INK))
            .draw()?;
        if let Some((x, label)) = input.marker {
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(x, 0.0), (x, y_hi)],
                    GRID.stroke_width(3),
                )))?
                .label(label)
                .legend(|(x, y)| {
                    PathElement::new(vec![(x + 8, y - 6), (x + 8, y + 6)], GRID.stroke_width(3))
                });
        }
        for (k, (name, pts)) in input.lines.iter().enumerate() {
            let color = PALETTE[k % PALETTE.len()];
            // One polyline per stretch of measured points.
            let mut stretches: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
            for &(x, y) in pts {
                match y {
                    Some(y) => stretches.last_mut().expect("one stretch").push((x, y)),
                    None if stretches.last().is_some_and(|s| !s.is_empty()) => {
                        stretches.push(Vec::new())
                    }
                    None => {}
                }
            }
            let mut labelled = false;
            for stretch in stretches.into_iter().filter(|s| !s.is_empty()) {
                // A lone point would be an invisible line: mark it.
                if stretch.len() == 1 {
                    chart.draw_series(std::iter::once(Circle::new(
                        stretch[0],
                        2,
                        color.filled(),
                    )))?;
                }
                let s = chart.draw_series(LineSeries::new(stretch, color.stroke_width(2)))?;
                if !labelled {
                    s.label(*name).legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                    });
                    labelled = true;
                }
            }
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(PAPER.mix(0.85))
            .border_style(GRID)
            .label_font(("sans-serif", 13).into_font().color(&INK))
            .draw()?;
        root.present()?;
    }
    Ok(svg)
}

/// One benchmark of an A/B chart: name, change in percent with its interval, and the
/// regression threshold in percent.
pub struct AbInput {
    /// Benchmark name.
    pub name: String,
    /// Change B/A in percent.
    pub change_pct: f64,
    /// Lower bound of the interval, percent.
    pub lower_pct: f64,
    /// Upper bound of the interval, percent.
    pub upper_pct: f64,
    /// Colour index (0 unchanged/inconclusive, 2 improved, 3 regressed).
    pub color: usize,
}

/// Change of each benchmark (B against A) with its confidence interval, one row each.
pub fn ab_chart(
    title: &str,
    statistic: &str,
    rows: &[AbInput],
    threshold_pct: f64,
) -> DrawResult<String> {
    let mut svg = String::new();
    {
        let h = 130 + 36 * rows.len() as u32;
        let root = SVGBackend::with_string(&mut svg, (960, h)).into_drawing_area();
        let (lo, hi) = rows
            .iter()
            .fold((-threshold_pct, threshold_pct), |(lo, hi), r| {
                (lo.min(r.lower_pct), hi.max(r.upper_pct))
            });
        let pad = (hi - lo) * 0.08;
        let n = rows.len() as i32;
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18).into_font().color(&INK))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(300)
            .build_cartesian_2d((lo - pad)..(hi + pad), -1..n)?;
        let y_fmt = |y: &i32| {
            usize::try_from(*y)
                .ok()
                .and_then(|i| names.get(i))
                .map(|s| s.to_string())
                .unwrap_or_default()
        };
        chart
            .configure_mesh()
            .x_desc(format!(
                "{statistic}: change of B against A (%), with confidence interval"
            ))
            .y_labels((n + 2) as usize)
            .y_label_formatter(&y_fmt)
            .x_label_formatter(&|v| format!("{v:+.0}%"))
            .axis_style(INK)
            .bold_line_style(GRID)
            .light_line_style(TRANSPARENT)
            .disable_y_mesh()
            .label_style(("sans-serif", 14).into_font().color(&INK))
            .axis_desc_style(("sans-serif", 15).into_font().color(&INK))
            .draw()?;
        for x in [0.0, threshold_pct, -threshold_pct] {
            let style = if x == 0.0 {
                INK.stroke_width(1)
            } else {
                GRID.stroke_width(2)
            };
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(x, -1), (x, n)],
                style,
            )))?;
        }
        for (i, r) in rows.iter().enumerate() {
            let color = PALETTE[r.color % PALETTE.len()];
            let y = i as i32;
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(r.lower_pct, y), (r.upper_pct, y)],
                color.stroke_width(3),
            )))?;
            chart.draw_series(std::iter::once(Circle::new(
                (r.change_pct, y),
                4,
                color.filled(),
            )))?;
        }
        root.present()?;
    }
    Ok(svg)
}

fn min_max(v: &[f64]) -> (f64, f64) {
    let (lo, hi) = v
        .iter()
        .filter(|x| x.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(x), hi.max(x))
        });
    if lo.is_finite() {
        (lo, hi)
    } else {
        (0.0, 1.0)
    }
}
