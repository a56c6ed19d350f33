//! OTLP metrics received from clients, kept as Prometheus series and rendered on `/metrics`.
