//! Structured events: one JSON object per line on stdout for every step, with its duration, so a
//! release can be followed by a person and parsed by a test or a pipeline.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

/// Where events go.
#[derive(Clone)]
pub struct Events {
    sink: Arc<Mutex<Box<dyn Write + Send>>>,
    recorded: Arc<Mutex<Vec<Value>>>,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events").finish_non_exhaustive()
    }
}

impl Events {
    /// Events written to stdout.
    #[must_use]
    pub fn stdout() -> Self {
        Self::to(Box::new(std::io::stdout()))
    }

    /// Events written to `sink` (tests pass `std::io::sink()` and read [`Events::recorded`]).
    #[must_use]
    pub fn to(sink: Box<dyn Write + Send>) -> Self {
        Self { sink: Arc::new(Mutex::new(sink)), recorded: Arc::new(Mutex::new(Vec::new())) }
    }

    /// Every event emitted so far.
    #[must_use]
    pub fn recorded(&self) -> Vec<Value> {
        self.recorded.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Emits `{"time_unix_ms", "event", ...fields}`.
    pub fn emit(&self, event: &str, fields: Value) {
        let mut object = Map::new();
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_millis());
        object.insert("time_unix_ms".into(), json!(now));
        object.insert("event".into(), json!(event));
        if let Value::Object(fields) = fields {
            object.extend(fields);
        }
        let line = Value::Object(object);
        {
            let mut sink = self.sink.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            // An unwritable stdout must not stop a release half-way: the event is still recorded.
            let _ = writeln!(sink, "{line}");
            let _ = sink.flush();
        }
        self.recorded.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(line);
    }

    /// Starts timing `step`; [`Step::done`] or [`Step::failed`] emits it with `duration_ms`.
    #[must_use]
    pub fn step(&self, step: &'static str) -> Step {
        Step { events: self.clone(), step, started: Instant::now() }
    }
}

/// A step being timed.
#[derive(Debug)]
pub struct Step {
    events: Events,
    step: &'static str,
    started: Instant,
}

impl Step {
    /// Milliseconds since the step started.
    #[must_use]
    pub fn elapsed_ms(&self) -> u128 {
        self.started.elapsed().as_millis()
    }

    /// Emits the step as done, with `fields`.
    pub fn done(self, fields: Value) {
        self.finish("ok", fields);
    }

    /// Emits the step as failed, with `reason` and `fields`.
    pub fn failed(self, reason: &str, mut fields: Value) {
        if let Value::Object(map) = &mut fields {
            map.insert("reason".into(), json!(reason));
        }
        self.finish("failed", fields);
    }

    /// Emits the step as done with a warning: something went wrong that does not stop the run.
    pub fn warned(self, reason: &str, mut fields: Value) {
        if let Value::Object(map) = &mut fields {
            map.insert("reason".into(), json!(reason));
        }
        self.finish("warning", fields);
    }

    fn finish(self, outcome: &str, fields: Value) {
        let mut object = match fields {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        object.insert("step".into(), json!(self.step));
        object.insert("outcome".into(), json!(outcome));
        object.insert("duration_ms".into(), json!(self.elapsed_ms()));
        self.events.emit("step", Value::Object(object));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_is_one_json_line_with_its_name_outcome_and_duration() {
        let events = Events::to(Box::new(std::io::sink()));
        events.step("deploy").done(json!({"color": "green"}));
        events.step("smoke").failed("Multiply answered wrong", json!({}));
        let recorded = events.recorded();
        assert_eq!(recorded[0]["event"], "step");
        assert_eq!(recorded[0]["step"], "deploy");
        assert_eq!(recorded[0]["outcome"], "ok");
        assert_eq!(recorded[0]["color"], "green");
        assert!(recorded[0]["duration_ms"].is_u64());
        assert_eq!(recorded[1]["outcome"], "failed");
        assert_eq!(recorded[1]["reason"], "Multiply answered wrong");
    }
}
