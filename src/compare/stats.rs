//! Small statistics shared by the comparison: relative change, median, min/max.

use crate::result::MinMax;

pub(super) fn pct(from: f64, to: f64) -> Option<f64> {
    (from > 0.0).then(|| (to - from) / from * 100.0)
}

pub(super) fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

pub(super) fn min_max(values: &[f64], existing: impl Iterator<Item = MinMax>) -> Option<MinMax> {
    let mut out: Option<MinMax> = None;
    let all = values
        .iter()
        .map(|&v| MinMax { min: v, max: v })
        .chain(existing);
    for m in all {
        out = Some(match out {
            None => m,
            Some(o) => MinMax {
                min: o.min.min(m.min),
                max: o.max.max(m.max),
            },
        });
    }
    out
}
