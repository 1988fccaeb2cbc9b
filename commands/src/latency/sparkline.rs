//! ASCII sparklines for LATENCY GRAPH, drawn exactly as Redis's `sparkline.c` draws them
//! (its rounding, its row of spaces above the labels, its labels written downwards).

/// Characters of one row, lowest first, in fill mode.
const CHARSET_FILL: &[u8] = b"_o#";
/// Blank rows between the graph and the labels.
const LABEL_MARGIN_TOP: usize = 1;

/// Samples to draw, with optional labels (Redis's `struct sequence`).
#[derive(Debug, Default)]
pub struct Sequence {
    samples: Vec<(f64, Option<Vec<u8>>)>,
    min: f64,
    max: f64,
    labels: usize,
}

impl Sequence {
    /// Appends a sample; an empty label is none.
    pub fn add(&mut self, value: f64, label: &str) {
        if self.samples.is_empty() {
            self.min = value;
            self.max = value;
        } else if value < self.min {
            self.min = value;
        } else if value > self.max {
            self.max = value;
        }
        let label = (!label.is_empty()).then(|| label.as_bytes().to_vec());
        if label.is_some() {
            self.labels += 1;
        }
        self.samples.push((value, label));
    }

    /// Redis's `sparklineRender(..., columns, rows, SPARKLINE_FILL)`: the samples in slices of
    /// `columns`, separated by an empty line.
    pub fn render(&self, out: &mut Vec<u8>, columns: usize, rows: usize) {
        let mut j = 0;
        while j < self.samples.len() {
            let len = (self.samples.len() - j).min(columns);
            if j != 0 {
                out.push(b'\n');
            }
            self.render_range(out, rows, j, len);
            j += columns;
        }
    }

    fn render_range(&self, out: &mut Vec<u8>, rows: usize, offset: usize, len: usize) {
        let mut relmax = self.max - self.min;
        if relmax == 0.0 {
            relmax = 1.0;
        }
        let charset_len = CHARSET_FILL.len() as i64;
        let steps = charset_len * rows as i64;
        let mut chars = vec![b' '; len];
        let mut row = 0usize;
        loop {
            let mut more = false;
            chars.fill(b' ');
            for (j, c) in chars.iter_mut().enumerate() {
                let (value, label) = &self.samples[j + offset];
                let relval = value - self.min;
                // C's `(int) (relval*steps)/relmax`: the product is truncated before the
                // division.
                let step = (((relval * steps as f64) as i64) as f64 / relmax) as i64;
                let step = step.clamp(0, steps - 1);
                if row < rows {
                    let charidx = step - (rows - row - 1) as i64 * charset_len;
                    more = true;
                    if (0..charset_len).contains(&charidx) {
                        *c = CHARSET_FILL[charidx as usize];
                    } else if charidx >= charset_len {
                        *c = b'|';
                    }
                } else {
                    // The margin row stays blank (Redis leaves the loop with the row cleared).
                    if self.labels > 0 && row - rows < LABEL_MARGIN_TOP {
                        more = true;
                        break;
                    }
                    if let Some(label) = label {
                        let at = row - rows - LABEL_MARGIN_TOP;
                        if let Some(&b) = label.get(at) {
                            more = true;
                            *c = b;
                        }
                    }
                }
            }
            if !more {
                break;
            }
            row += 1;
            out.extend_from_slice(&chars);
            out.push(b'\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_sample_as_redis_draws_it() {
        let mut s = Sequence::default();
        s.add(1.0, "0s");
        let mut out = Vec::new();
        s.render(&mut out, 80, 4);
        assert_eq!(out, b" \n \n \n_\n \n0\ns\n");
    }

    #[test]
    fn heights_and_labels() {
        let mut s = Sequence::default();
        for (v, l) in [(1.0, "5s"), (12.0, "3s"), (6.0, "12s")] {
            s.add(v, l);
        }
        let mut out = Vec::new();
        s.render(&mut out, 80, 4);
        let text = String::from_utf8(out).unwrap();
        // steps = 12; relmax = 11: steps 0, 12 (clamped to 11) and trunc(60 / 11) = 5.
        assert_eq!(text, " # \n | \n |#\n_||\n   \n531\nss2\n  s\n");
    }
}
