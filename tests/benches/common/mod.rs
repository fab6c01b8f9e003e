//! What the latency benchmarks (`ingest_latency`, `many_jobs`) share: percentiles of sorted
//! samples and their cumulative curves as an SVG.

use plotters::prelude::*;

/// The `q` quantile (0–1) of `sorted` samples, 0 when there are none.
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// A cumulative curve.
pub struct Curve<'a> {
    pub label: String,
    /// Milliseconds, sorted.
    pub samples: &'a [f64],
    pub color: RGBColor,
}

/// The share of samples within x ms of each curve, on a log time axis from `min_ms`, at most
/// 2,000 points a curve.
pub fn latency_cdf(path: &std::path::Path, size: (u32, u32), caption: &str, min_ms: f64, curves: &[Curve<'_>]) {
    let root = SVGBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE).expect("plot");
    let max = curves.iter().filter_map(|c| c.samples.last().copied()).fold(1.0, f64::max) * 1.2;
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(36)
        .y_label_area_size(50)
        .build_cartesian_2d((min_ms..max).log_scale(), 0.0..1.0)
        .expect("plot");
    chart.configure_mesh().x_desc("ms (log scale)").y_desc("share").draw().expect("plot");
    for curve in curves {
        let (samples, color) = (curve.samples, curve.color);
        let n = samples.len().max(1) as f64;
        let every = (samples.len() / 2000).max(1);
        let points = samples
            .iter()
            .enumerate()
            .filter(|(i, _)| i % every == 0 || *i + 1 == samples.len())
            .map(|(i, ms)| (*ms, (i + 1) as f64 / n));
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))
            .expect("plot")
            .label(curve.label.clone())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .expect("plot");
    root.present().expect("plot");
}
