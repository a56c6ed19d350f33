//! Points refused while storing one request: counted by reason and reported as `partial_success`.

use super::REFUSED_POINTS_METRIC;

/// Points of one request that were not stored: the OTLP `partial_success`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rejected {
    /// Points refused; 0 when all were accepted.
    pub points: i64,
    /// Why, for the client; empty when all were accepted.
    pub message: String,
}

pub(super) const MAX_MESSAGES: usize = 4;

/// Why points were refused; the label of `axiom25_collector_metric_points_refused_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reason {
    Cardinality,
    TypeConflict,
    NameConflict,
    Unsupported,
    Invalid,
}

impl Reason {
    const ALL: [Self; 5] =
        [Self::Cardinality, Self::TypeConflict, Self::NameConflict, Self::Unsupported, Self::Invalid];

    pub(super) const fn label(self) -> &'static str {
        match self {
            Self::Cardinality => "cardinality",
            Self::TypeConflict => "type_conflict",
            Self::NameConflict => "name_conflict",
            Self::Unsupported => "unsupported",
            Self::Invalid => "invalid",
        }
    }
}

/// Points refused while handling one request, with the first message of each reason.
#[derive(Debug, Default)]
pub(super) struct Refusals {
    points: [u64; 5],
    messages: Vec<String>,
}

impl Refusals {
    pub(super) fn refuse(&mut self, reason: Reason, points: u64, message: impl FnOnce() -> String) {
        if points == 0 {
            return;
        }
        if self.points[reason as usize] == 0 && self.messages.len() < MAX_MESSAGES {
            let message = message();
            if !message.is_empty() {
                self.messages.push(message);
            }
        }
        self.points[reason as usize] += points;
    }

    pub(super) fn finish(self) -> Rejected {
        for reason in Reason::ALL {
            let points = self.points[reason as usize];
            if points > 0 {
                metrics::counter!(REFUSED_POINTS_METRIC, "reason" => reason.label()).increment(points);
            }
        }
        let points: u64 = self.points.iter().sum();
        if points == 0 {
            return Rejected::default();
        }
        let message = format!("{points} data point(s) refused: {}", self.messages.join("; "));
        Rejected { points: i64::try_from(points).unwrap_or(i64::MAX), message }
    }
}
