"""Prometheus text exposition, parsed by the Prometheus client's own parser: samples by name and
a subset of their labels."""

from prometheus_client.parser import text_string_to_metric_families


class Exposition:
    """Every sample of one `/metrics` answer."""

    def __init__(self, samples):
        self.samples = list(samples)

    def values(self, name, **labels):
        """Values of the samples named `name` whose labels include `labels`, in exposition order."""
        return [
            sample.value
            for sample in self.samples
            if sample.name == name and all(sample.labels.get(key) == value for key, value in labels.items())
        ]

    def value(self, name, **labels):
        """The first such value, or None."""
        found = self.values(name, **labels)
        return found[0] if found else None

    def sum(self, name, **labels):
        """Sum over every such sample (0 when there is none)."""
        return sum(self.values(name, **labels))


def parse_exposition(text) -> Exposition:
    return Exposition(sample for family in text_string_to_metric_families(text) for sample in family.samples)


def samples(text, name, **labels):
    """Values of the samples `name{labels...}` in `text` (labels matched as a subset)."""
    return parse_exposition(text).values(name, **labels)
