//! SVG plots with `plotters` (SVG backend only: text is written as SVG
//! `<text>`, so no font files are needed to draw).
//!
//! * latency distribution per setup: round-trip time against percentile
//!   (an HdrHistogram-style percentile plot, time on a log scale);
//! * throughput against message size per setup, in messages/s and bytes/s
//!   (both axes logarithmic).
//!
//! Each plot has its legend in a panel to the right, so that it never hides
//! a curve.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::{Results, Sys};

type PlotResult = Result<(), Box<dyn std::error::Error>>;

/// Width and height of every plot, and of its legend panel.
const SIZE: (u32, u32) = (1220, 560);
const LEGEND: u32 = 440;

/// One colour per system, stable across plots.
fn colour(sys: Sys) -> RGBColor {
    match sys {
        Sys::Floor => RGBColor(0, 0, 0),
        Sys::Floor64 => RGBColor(96, 96, 96),
        Sys::SpscBusy => RGBColor(31, 119, 180),
        Sys::SpscDefault | Sys::SpscDefaultIdle => RGBColor(23, 190, 207),
        Sys::SpscPark | Sys::SpscParkIdle => RGBColor(44, 160, 44),
        Sys::MpmcBusy => RGBColor(148, 103, 189),
        Sys::SpscInPlace => RGBColor(0, 90, 160),
        Sys::MpmcInPlace => RGBColor(110, 60, 150),
        Sys::ShmPipeBusy => RGBColor(0, 0, 128),
        Sys::ShmPipeDefault => RGBColor(0, 139, 139),
        Sys::ShmPipePark => RGBColor(85, 107, 47),
        Sys::ShmPipeGrants => RGBColor(199, 21, 133),
        Sys::Iceoryx2 => RGBColor(214, 39, 40),
        Sys::Pipe | Sys::PipeIdle => RGBColor(255, 127, 14),
        Sys::Socket | Sys::SocketIdle => RGBColor(140, 86, 75),
        Sys::PyQueue => RGBColor(227, 119, 194),
        Sys::PyPipe => RGBColor(188, 189, 34),
        Sys::Rtrb => RGBColor(127, 127, 127),
        Sys::ArrayQueue => RGBColor(90, 90, 160),
        Sys::StdMpsc => RGBColor(170, 140, 60),
    }
}

/// shmkit and the floor stand out.
fn width(sys: Sys) -> u32 {
    if sys.kind() == "shmkit" || sys.kind() == "floor" {
        3
    } else {
        2
    }
}

fn style(sys: Sys) -> ShapeStyle {
    colour(sys).stroke_width(width(sys))
}

/// Draws the legend of `series` into `area`, one line per system.
fn legend(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    series: &[Sys],
    stream: bool,
) -> PlotResult {
    let font = ("sans-serif", 17).into_font().color(&BLACK);
    for (i, &sys) in series.iter().enumerate() {
        let y = 60 + 26 * i as i32;
        area.draw(&PathElement::new(vec![(8, y), (40, y)], style(sys)))?;
        area.draw(&Text::new(sys.label(stream), (48, y - 9), font.clone()))?;
    }
    Ok(())
}

/// Percentile positions: x = -log10(1 - q), from p0 to p99.9.
const NINES: f64 = 3.0;

fn nines_label(x: f64) -> String {
    match x.round() as i32 {
        0 => "p0".to_owned(),
        1 => "p90".to_owned(),
        2 => "p99".to_owned(),
        3 => "p99.9".to_owned(),
        _ => format!("{x:.1}"),
    }
}

fn ns_label(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.0} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.0} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

/// The round-trip distribution of every system in setup `setup`.
pub fn latency(r: &Results, setup: usize, path: &Path) -> PlotResult {
    let mut series: Vec<(Sys, Vec<(f64, f64)>)> = Vec::new();
    for sys in crate::systems() {
        let Some(h) = r.lat.get(&(sys, setup)).and_then(|a| a.hist.as_ref()) else {
            continue;
        };
        let pts = (0..=60)
            .map(|i| {
                let x = NINES * f64::from(i) / 60.0;
                let q = 1.0 - 10f64.powf(-x);
                (x, h.value_at_quantile(q).max(1) as f64)
            })
            .collect();
        series.push((sys, pts));
    }
    if series.is_empty() {
        return Ok(());
    }
    let (lo, hi) = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|&(_, y)| y))
        .fold((f64::MAX, 0f64), |(lo, hi), y| (lo.min(y), hi.max(y)));
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(SIZE.0 - LEGEND);
    let mut chart = ChartBuilder::on(&left)
        .caption(
            format!(
                "Round trip of an 8-byte message{}, {}",
                if series.iter().any(|(s, _)| s.is_shm_pipe()) {
                    " (shmkit pipe: 64 B)"
                } else {
                    ""
                },
                r.setups[setup].key
            ),
            ("sans-serif", 26),
        )
        .margin(14)
        .x_label_area_size(52)
        .y_label_area_size(84)
        .build_cartesian_2d(0f64..NINES, ((lo * 0.8)..(hi * 1.25)).log_scale())?;
    chart
        .configure_mesh()
        .x_labels(4)
        .x_label_formatter(&|x| nines_label(*x))
        .y_label_formatter(&|y| ns_label(*y))
        .x_desc("percentile")
        .y_desc("round-trip time")
        .label_style(("sans-serif", 17))
        .axis_desc_style(("sans-serif", 18))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    for (sys, pts) in &series {
        chart.draw_series(LineSeries::new(pts.iter().copied(), style(*sys)))?;
    }
    let systems: Vec<Sys> = series.iter().map(|(s, _)| *s).collect();
    legend(&right, &systems, false)?;
    root.present()?;
    Ok(())
}

fn size_label(b: f64) -> String {
    let b = b.round() as u64;
    if b >= 1 << 20 {
        format!("{} MiB", b >> 20)
    } else if b >= 1 << 10 {
        format!("{} KiB", b >> 10)
    } else {
        format!("{b} B")
    }
}

fn rate_label(v: f64, unit: &str) -> String {
    if v >= 1e9 {
        format!("{:.0} G{unit}", v / 1e9)
    } else if v >= 1e6 {
        format!("{:.0} M{unit}", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.0} k{unit}", v / 1e3)
    } else {
        format!("{v:.0} {unit}")
    }
}

/// Median throughput against message size for every system in `setup`:
/// messages/s if `bytes` is false, bytes/s otherwise.
pub fn throughput(r: &Results, setup: usize, bytes: bool, path: &Path) -> PlotResult {
    let mut series: Vec<(Sys, Vec<(f64, f64)>)> = Vec::new();
    for sys in crate::systems() {
        let pts: Vec<(f64, f64)> = r
            .config
            .sizes
            .iter()
            .filter_map(|&size| {
                let m = r.tput.get(&(sys, setup, size))?.median()?;
                let y = if bytes { m * size as f64 } else { m };
                Some(((size as f64).log2(), y))
            })
            .collect();
        if !pts.is_empty() {
            series.push((sys, pts));
        }
    }
    if series.is_empty() {
        return Ok(());
    }
    let (lo, hi) = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|&(_, y)| y))
        .fold((f64::MAX, 0f64), |(lo, hi), y| (lo.min(y), hi.max(y)));
    let (ylo, yhi) = (lo * 0.7, hi * 1.5);
    let logs: Vec<f64> = r.config.sizes.iter().map(|&s| (s as f64).log2()).collect();
    let xlo = logs.first().copied().unwrap_or(3.0);
    let xhi = logs.last().copied().unwrap_or(20.0);
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(SIZE.0 - LEGEND);
    let what = if bytes {
        "bytes per second"
    } else {
        "messages per second"
    };
    let mut chart = ChartBuilder::on(&left)
        .caption(
            format!("One-way throughput in {what}, {}", r.setups[setup].key),
            ("sans-serif", 26),
        )
        .margin(14)
        .x_label_area_size(52)
        .y_label_area_size(96)
        .build_cartesian_2d(xlo - 0.6..xhi + 0.6, (ylo..yhi).log_scale())?;
    // The x axis is log2 of the size, labelled at the measured sizes only
    // (drawn by hand below).
    chart
        .configure_mesh()
        .x_labels(0)
        .y_label_formatter(&|y| rate_label(*y, if bytes { "B/s" } else { "" }))
        .x_desc("message size")
        .y_desc(what)
        .label_style(("sans-serif", 17))
        .axis_desc_style(("sans-serif", 18))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    let tick_font = ("sans-serif", 17)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Center, VPos::Top));
    for &x in &logs {
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(x, ylo), (x, yhi)],
            BLACK.mix(0.15),
        )))?;
        let (px, py) = chart.backend_coord(&(x, ylo));
        root.draw(&Text::new(
            size_label(x.exp2()),
            (px, py + 8),
            tick_font.clone(),
        ))?;
    }
    for (sys, pts) in &series {
        chart.draw_series(LineSeries::new(pts.iter().copied(), style(*sys)))?;
        let c = colour(*sys);
        chart.draw_series(pts.iter().map(move |&p| Circle::new(p, 3, c.filled())))?;
    }
    let systems: Vec<Sys> = series.iter().map(|(s, _)| *s).collect();
    legend(&right, &systems, true)?;
    root.present()?;
    Ok(())
}
