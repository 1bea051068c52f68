//! Bar charts of a [`SparsityReport`]: one horizontal bar per parameter (sparsity in percent)
//! and a line at the global sparsity, drawn with `plotters` as SVG (feature `plot`) or PNG
//! (feature `plot-png`).
//!
//! SVG needs no font: the text is written as `<text>` elements and the viewer renders it in its
//! own sans-serif font. PNG rasterizes the text itself, with the Noto Sans font built into the
//! crate (through `ab_glyph`, pure Rust), so neither needs a system library or a font on the
//! machine.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::SparsityReport;
use crate::error::{PruneError, Result};

/// The font family of every text: the viewer's sans-serif in SVG, Noto Sans in PNG.
const FONT: &str = "sans-serif";
const BAR: RGBColor = RGBColor(0x4c, 0x72, 0xb0);
const GLOBAL: RGBColor = RGBColor(0xc4, 0x4e, 0x52);
/// The largest PNG chart drawn, in pixels (768 MiB of RGB; about 9000 rows at the widest).
#[cfg(feature = "plot-png")]
const MAX_PNG_PIXELS: u64 = 1 << 28;

impl SparsityReport {
    /// The bar chart as an SVG document (feature `plot`): one horizontal bar per parameter,
    /// labelled with its name and its sparsity, and a vertical line at the global sparsity. The
    /// image grows with the number of parameters (about 26 pixels a bar).
    ///
    /// # Errors
    /// [`PruneError::InvalidReport`] for a sparsity that is not a percentage in `[0, 100]` (NaN
    /// included: a report deserialized from untrusted data, or edited), naming the field;
    /// [`PruneError::Plot`] when `plotters` fails to draw (not expected for valid reports).
    /// Counts are drawn as they are, even when they do not add up.
    ///
    /// ```
    /// use tch::Tensor;
    /// use tch_prune::SparsityReport;
    ///
    /// let w = Tensor::from_slice(&[0.0f32, 1.0, 2.0, 3.0]);
    /// let svg = SparsityReport::from_tensors([("fc.weight", &w)])?.to_svg()?;
    /// assert!(svg.starts_with("<svg") && svg.contains("fc.weight") && svg.contains("25.00%"));
    /// # Ok::<(), tch_prune::PruneError>(())
    /// ```
    pub fn to_svg(&self) -> Result<String> {
        self.check_drawable()?;
        let (width, height) = self.chart_size();
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
            self.draw(&root).map_err(plot_error)?;
            root.present().map_err(plot_error)?;
        }
        Ok(svg)
    }

    /// Writes [`to_svg`](Self::to_svg)'s chart to `path` (created or truncated; feature `plot`).
    ///
    /// # Errors
    /// [`PruneError::Io`] when the file cannot be written, and those of
    /// [`to_svg`](Self::to_svg).
    ///
    /// ```
    /// use tch::Tensor;
    /// use tch_prune::SparsityReport;
    ///
    /// let path = std::env::temp_dir().join(format!("sparsity-doc-{}.svg", std::process::id()));
    /// let w = Tensor::from_slice(&[0.0f32, 1.0]);
    /// SparsityReport::from_tensors([("w", &w)])?.write_svg(&path)?;
    /// assert!(std::fs::read_to_string(&path)?.contains("50.00%"));
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn write_svg(&self, path: impl AsRef<Path>) -> Result<()> {
        let svg = self.to_svg()?;
        write_file(path.as_ref(), svg.as_bytes())
    }

    /// The bar chart of [`to_svg`](Self::to_svg) as a PNG image (feature `plot-png`).
    ///
    /// # Errors
    /// As [`to_svg`](Self::to_svg), and [`PruneError::InvalidReport`] for a chart of more than
    /// 2<sup>28</sup> pixels (about 9000 parameters); [`PruneError::Plot`] when encoding fails.
    ///
    /// ```
    /// use tch::Tensor;
    /// use tch_prune::SparsityReport;
    ///
    /// let w = Tensor::from_slice(&[0.0f32, 1.0]);
    /// let png = SparsityReport::from_tensors([("w", &w)])?.to_png()?;
    /// assert_eq!(&png[1..4], b"PNG");
    /// # Ok::<(), tch_prune::PruneError>(())
    /// ```
    #[cfg(feature = "plot-png")]
    pub fn to_png(&self) -> Result<Vec<u8>> {
        use image::ImageEncoder;

        self.check_drawable()?;
        let (width, height) = self.chart_size();
        let pixels = u64::from(width) * u64::from(height);
        if pixels > MAX_PNG_PIXELS {
            return Err(PruneError::InvalidReport {
                field: "parameters".into(),
                value: self.parameters.len() as f64,
                expected: "few enough rows for a PNG chart of at most 2^28 pixels",
            });
        }
        let mut pixels = vec![0u8; pixels as usize * 3];
        {
            let root = BitMapBackend::with_buffer(&mut pixels, (width, height)).into_drawing_area();
            self.draw(&root).map_err(plot_error)?;
            root.present().map_err(plot_error)?;
        }
        let mut png = Vec::new();
        image::codecs::png::PngEncoder::new(&mut png)
            .write_image(&pixels, width, height, image::ColorType::Rgb8)
            .map_err(|e| PruneError::Plot { reason: format!("png encoding: {e}") })?;
        Ok(png)
    }

    /// Writes [`to_png`](Self::to_png)'s image to `path` (feature `plot-png`).
    ///
    /// # Errors
    /// [`PruneError::Io`] when the file cannot be written, and those of
    /// [`to_png`](Self::to_png).
    ///
    /// ```
    /// use tch::Tensor;
    /// use tch_prune::SparsityReport;
    ///
    /// let path = std::env::temp_dir().join(format!("sparsity-doc-{}.png", std::process::id()));
    /// let w = Tensor::from_slice(&[0.0f32, 1.0]);
    /// SparsityReport::from_tensors([("w", &w)])?.write_png(&path)?;
    /// assert!(std::fs::metadata(&path)?.len() > 0);
    /// # std::fs::remove_file(&path)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "plot-png")]
    pub fn write_png(&self, path: impl AsRef<Path>) -> Result<()> {
        let png = self.to_png()?;
        write_file(path.as_ref(), &png)
    }

    /// Fails with [`PruneError::InvalidReport`] unless every sparsity is a percentage in
    /// `[0, 100]`: plotters overflows (panics) on coordinates far outside the axis.
    fn check_drawable(&self) -> Result<()> {
        let check = |field: String, value: f64| {
            if (0.0..=100.0).contains(&value) {
                Ok(())
            } else {
                Err(PruneError::InvalidReport {
                    field,
                    value,
                    expected: "a percentage in [0, 100]",
                })
            }
        };
        for (i, p) in self.parameters.iter().enumerate() {
            check(format!("parameters[{i}].sparsity_percent"), p.sparsity_percent)?;
        }
        check("sparsity_percent".into(), self.sparsity_percent)
    }

    /// Width and height in pixels: room for the longest name on the left, a bar per parameter
    /// (saturating: a report can hold any number of rows).
    fn chart_size(&self) -> (u32, u32) {
        let bars = u32::try_from(self.parameters.len().max(1)).unwrap_or(u32::MAX);
        (640 + self.label_width(), bars.saturating_mul(26).saturating_add(110))
    }

    /// Pixels for the parameter names (about 7 a character at 13 px).
    fn label_width(&self) -> u32 {
        let longest = self.parameters.iter().map(|p| p.name.chars().count()).max().unwrap_or(0);
        let longest = u32::try_from(longest).unwrap_or(u32::MAX);
        longest.saturating_mul(7).saturating_add(20).clamp(60, 480)
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        register_font();
        root.fill(&WHITE)?;
        let n = self.parameters.len();
        // Row `i` of the report is centred at y = n - 1 - i (the first at the top), on a plain
        // numeric axis whose integer ticks carry the names: a segmented axis would leave an
        // empty slot above the bars.
        let top = n.max(1) as f64 - 0.5;
        let names: Vec<&str> = self.parameters.iter().rev().map(|p| p.name.as_str()).collect();
        let caption = format!(
            "Sparsity per parameter (global {:.2}%: {} of {} entries are zero)",
            self.sparsity_percent, self.zeros, self.numel
        );
        let mut chart = ChartBuilder::on(root)
            .caption(caption, (FONT, 16))
            .margin(14)
            .x_label_area_size(38)
            .y_label_area_size(self.label_width())
            .build_cartesian_2d(0f64..100f64, -0.5f64..top)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(n.max(1))
            .y_label_formatter(&|y| {
                let row = y.round();
                if (y - row).abs() > 1e-6 || row < 0.0 {
                    return String::new();
                }
                names.get(row as usize).map_or(String::new(), |s| s.to_string())
            })
            .x_labels(11)
            .x_label_formatter(&|x| format!("{x:.0}%"))
            .x_desc("zero entries (%)")
            .label_style((FONT, 13))
            .axis_desc_style((FONT, 13))
            .light_line_style(WHITE.mix(0.0))
            .bold_line_style(BLACK.mix(0.12))
            .draw()?;

        let row = |i: usize| (n - 1 - i) as f64;
        chart.draw_series(self.parameters.iter().enumerate().map(|(i, p)| {
            let y = row(i);
            Rectangle::new([(0.0, y - 0.35), (p.sparsity_percent, y + 0.35)], BAR.filled())
        }))?;
        let outside =
            TextStyle::from((FONT, 12).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
        let inside = TextStyle::from((FONT, 12).into_font())
            .pos(Pos::new(HPos::Right, VPos::Center))
            .color(&WHITE);
        chart.draw_series(self.parameters.iter().enumerate().map(|(i, p)| {
            let label = format!("{:.2}%", p.sparsity_percent);
            // Past 85% the label would run off the plot: it goes inside the bar's end.
            if p.sparsity_percent > 85.0 {
                Text::new(label, (p.sparsity_percent - 1.0, row(i)), inside.clone())
            } else {
                Text::new(label, (p.sparsity_percent + 1.0, row(i)), outside.clone())
            }
        }))?;
        if n > 0 {
            let g = self.sparsity_percent;
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(g, -0.5), (g, top)],
                GLOBAL.stroke_width(2),
            )))?;
        }
        Ok(())
    }
}

/// With the `plot-png` feature, plotters measures and draws text with `ab_glyph`, which knows
/// only the fonts registered with it (even for SVG, where it estimates text sizes): register
/// the bundled Noto Sans as `"sans-serif"` once.
fn register_font() {
    #[cfg(feature = "plot-png")]
    {
        static REGISTERED: std::sync::Once = std::sync::Once::new();
        REGISTERED.call_once(|| {
            // The bytes are a valid font (a test renders with them); a failure would only mean
            // that text is missing, which the drawing then reports as an error.
            let _ = plotters::style::register_font(FONT, FontStyle::Normal, ttf_noto_sans::REGULAR);
        });
    }
}

fn plot_error<E: std::error::Error + Send + Sync>(e: DrawingAreaErrorKind<E>) -> PruneError {
    PruneError::Plot { reason: e.to_string() }
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::write(path, bytes).map_err(|source| PruneError::Io {
        operation: "write",
        path: path.to_path_buf(),
        source,
    })
}
