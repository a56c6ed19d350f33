"""CPU time and resident memory of a process, from /proc."""

import dataclasses
import os

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclasses.dataclass(frozen=True)
class Usage:
    """CPU seconds (user + system) used so far and resident set size in bytes."""

    cpu_seconds: float
    resident_bytes: int


def usage(pid) -> Usage:
    with open(f"/proc/{pid}/stat") as stat:
        # The command name may hold spaces and parentheses: the fields start after the last ")".
        fields = stat.read().rsplit(")", 1)[1].split()
    # Fields 14, 15 (utime, stime) and 24 (rss, pages) of proc(5); `fields[0]` is field 3.
    return Usage((int(fields[11]) + int(fields[12])) / _TICKS, int(fields[21]) * _PAGE)


def cpu_seconds(pid) -> float:
    return usage(pid).cpu_seconds


def resident_bytes(pid) -> int:
    return usage(pid).resident_bytes
