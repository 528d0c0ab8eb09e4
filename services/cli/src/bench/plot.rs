//! `--plot FILE.png`: latency against percentile, one panel per scenario, one curve per phase.
//! The x axis counts "nines" (90, 99, 99.9...), the y axis is logarithmic. Text needs a font:
//! DejaVu or Liberation Sans is used where installed; without one the curves are drawn
//! unlabelled (the legend is in the JSON and the table).

use std::error::Error;
use std::path::Path;

use plotters::prelude::*;
use plotters::style::FontStyle;

use super::scenarios::ScenarioResult;

/// Percentiles past 99.999 are drawn at 99.999.
const MAX_NINES: f64 = 5.0;

const FONTS: [&str; 3] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/freefont/FreeSans.ttf",
];

/// Registers the first system font found as "sans-serif"; false when none is there.
fn load_font() -> bool {
    for path in FONTS {
        if let Ok(bytes) = std::fs::read(path) {
            // Registered once per process and kept for its life, as plotters requires.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                return true;
            }
        }
    }
    false
}

fn nines(percentile: f64) -> f64 {
    let rest = 1.0 - percentile / 100.0;
    if rest <= 0.0 {
        MAX_NINES
    } else {
        (-rest.log10()).clamp(0.0, MAX_NINES)
    }
}

fn percentile_label(x: f64) -> String {
    let p = 100.0 * (1.0 - 10f64.powf(-x));
    if p < 99.0 {
        format!("{p:.0}")
    } else {
        let s = format!("{p:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

/// Draws the PNG.
pub(crate) fn draw(path: &Path, scenarios: &[ScenarioResult]) -> anyhow::Result<()> {
    let text = load_font();
    render(path, scenarios, text)
        .map_err(|e| anyhow::anyhow!("cannot draw {}: {e}", path.display()))
}

fn render(path: &Path, scenarios: &[ScenarioResult], text: bool) -> Result<(), Box<dyn Error>> {
    let drawn: Vec<&ScenarioResult> = scenarios
        .iter()
        .filter(|s| s.phases.iter().any(|p| !p.curve.is_empty()))
        .collect();
    let cols = if drawn.len() > 1 { 2 } else { 1 };
    let rows = drawn.len().div_ceil(cols).max(1);
    let root = BitMapBackend::new(path, (800 * cols as u32, 520 * rows as u32)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((rows, cols));
    for (panel, scenario) in panels.iter().zip(drawn) {
        let values = scenario
            .phases
            .iter()
            .flat_map(|p| p.curve.iter().map(|&(_, ms)| ms.max(0.01)));
        let (lo, hi) = values.fold((f64::MAX, 0.01f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
        let y = (lo * 0.8).max(0.01)..(hi * 1.5);
        let mut builder = ChartBuilder::on(panel);
        builder.margin(12);
        if text {
            builder
                .caption(scenario.name, ("sans-serif", 22))
                .x_label_area_size(36)
                .y_label_area_size(56);
        }
        let mut chart = builder.build_cartesian_2d(0f64..MAX_NINES, y.log_scale())?;
        let mut mesh = chart.configure_mesh();
        if text {
            mesh.x_desc("percentile")
                .y_desc("latency, ms")
                .x_labels(6)
                .x_label_formatter(&|x| percentile_label(*x))
                .y_label_formatter(&|y| {
                    if *y >= 10.0 {
                        format!("{y:.0}")
                    } else {
                        format!("{y}")
                    }
                });
        } else {
            mesh.x_labels(0).y_labels(0);
        }
        mesh.draw()?;
        for (i, phase) in scenario.phases.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            let points = phase.curve.iter().map(|&(p, ms)| (nines(p), ms.max(0.01)));
            let series = chart.draw_series(LineSeries::new(points, color.stroke_width(2)))?;
            if text {
                series.label(phase.label.clone()).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
            }
        }
        if text {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .label_font(("sans-serif", 14))
                .draw()?;
        }
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nines_scale_round_trips() {
        assert_eq!(nines(0.0), 0.0);
        assert!((nines(99.0) - 2.0).abs() < 1e-9);
        assert_eq!(nines(100.0), MAX_NINES);
        assert_eq!(percentile_label(2.0), "99");
        assert_eq!(percentile_label(3.0), "99.9");
        assert_eq!(percentile_label(1.0), "90");
    }
}
