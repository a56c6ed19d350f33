"""The AXIOM-25 test kit, Python twin of the `axiom25-testkit` crate (libs/testkit): used by
tests/python and tools/bench, so none of them keeps a copy of its own."""

from axiom25_testkit.exposition import Exposition, parse_exposition, samples
from axiom25_testkit.http import Answer, request
from axiom25_testkit.launch import Service, launch
from axiom25_testkit.resources import Usage, cpu_seconds, resident_bytes, usage

__all__ = [
    "Answer",
    "Exposition",
    "Service",
    "Usage",
    "cpu_seconds",
    "launch",
    "parse_exposition",
    "request",
    "resident_bytes",
    "samples",
    "usage",
]
