//! `Display` for [`SparsityReport`]: an aligned table, or the PyTorch tutorial's lines.

use std::fmt;

use super::SparsityReport;

impl fmt::Display for SparsityReport {
    /// `{}`: an aligned table, one row per parameter and a `global` row:
    ///
    /// ```text
    /// parameter     shape           numel  zeros  sparsity  masked
    /// conv1.weight  [6, 1, 3, 3]       54      4     7.41%  yes
    /// ...
    /// global                        61706  12341    20.00%
    /// ```
    ///
    /// `{:#}`: the lines the PyTorch pruning tutorial prints, `Sparsity in conv1.weight:
    /// 7.41%` per parameter, then `Global sparsity: 20.00%`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            for p in &self.parameters {
                writeln!(f, "Sparsity in {}: {:.2}%", p.name, p.sparsity_percent)?;
            }
            return writeln!(f, "Global sparsity: {:.2}%", self.sparsity_percent);
        }

        let header = ["parameter", "shape", "numel", "zeros", "sparsity", "masked"];
        let mut rows: Vec<[String; 6]> = self
            .parameters
            .iter()
            .map(|p| {
                [
                    p.name.clone(),
                    format!("{:?}", p.shape),
                    p.numel.to_string(),
                    p.zeros.to_string(),
                    format!("{:.2}%", p.sparsity_percent),
                    if p.masked { "yes" } else { "no" }.to_string(),
                ]
            })
            .collect();
        rows.push([
            "global".to_string(),
            String::new(),
            self.numel.to_string(),
            self.zeros.to_string(),
            format!("{:.2}%", self.sparsity_percent),
            String::new(),
        ]);
        let mut widths = header.map(str::len);
        for row in &rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let total: usize = widths.iter().sum::<usize>() + 2 * (widths.len() - 1);
        let header = header.map(str::to_string);
        let (body, global) = rows.split_at(rows.len() - 1);
        write_row(f, &header, &widths)?;
        for row in body {
            write_row(f, row, &widths)?;
        }
        writeln!(f, "{}", "-".repeat(total))?;
        write_row(f, &global[0], &widths)
    }
}

/// One line: text columns (name, shape, masked) left-aligned, numbers right-aligned, two
/// spaces between columns, no trailing spaces.
fn write_row(f: &mut fmt::Formatter<'_>, cells: &[String; 6], widths: &[usize; 6]) -> fmt::Result {
    let mut line = String::new();
    for (i, (cell, &width)) in cells.iter().zip(widths).enumerate() {
        if i > 0 {
            line.push_str("  ");
        }
        let pad = width - cell.chars().count();
        let right_aligned = (2..=4).contains(&i);
        if right_aligned {
            line.extend(std::iter::repeat_n(' ', pad));
            line.push_str(cell);
        } else {
            line.push_str(cell);
            line.extend(std::iter::repeat_n(' ', pad));
        }
    }
    writeln!(f, "{}", line.trim_end())
}

#[cfg(test)]
mod tests {
    use tch::Tensor;

    use super::*;

    #[test]
    fn table_is_aligned() {
        let a = Tensor::from_slice(&[0.0f32, 1.0, 2.0, 3.0]).reshape([2, 2]);
        let b = Tensor::from_slice(&[0.0f32; 10]);
        let report = SparsityReport::from_tensors([("layer.weight", &a), ("b", &b)]).unwrap();
        let text = report.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5);
        assert_eq!(lines[0], "parameter     shape   numel  zeros  sparsity  masked");
        assert_eq!(lines[1], "layer.weight  [2, 2]      4      1    25.00%  no");
        assert_eq!(lines[2], "b             [10]       10     10   100.00%  no");
        assert!(lines[3].chars().all(|c| c == '-'));
        assert_eq!(lines[4], "global                   14     11    78.57%");
    }

    #[test]
    fn alternate_form_is_the_tutorials() {
        let a = Tensor::from_slice(&[0.0f32, 1.0, 2.0, 3.0]);
        let report = SparsityReport::from_tensors([("w", &a)]).unwrap();
        assert_eq!(format!("{report:#}"), "Sparsity in w: 25.00%\nGlobal sparsity: 25.00%\n");
    }
}
