"""Durations as operators write them: Go style (`250ms`, `30s`, `1h30m`) or ISO-8601 (`PT30S`).

Knative's DeliverySpec uses ISO-8601, Kubernetes users write Go durations; both are accepted
wherever the configuration takes a duration.
"""

import re
from datetime import timedelta

_GO_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_GO = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+")
_ISO = re.compile(
    r"P(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?"
)
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def parse_duration(text: str) -> timedelta:
    """Parse a duration; raise ValueError with a message fit for an operator."""
    value = text.strip()
    if _GO.fullmatch(value):
        ms = sum(float(n) * _UNIT_MS[unit] for n, unit in _GO_PART.findall(value))
        return timedelta(milliseconds=ms)
    iso = _ISO.fullmatch(value.upper())
    if iso and value.upper() not in ("P", "PT") and not value.upper().endswith("T"):
        parts = {k: float(v) for k, v in iso.groupdict().items() if v is not None}
        return timedelta(**parts)
    raise ValueError(
        f"invalid duration {text!r}: use a number with a unit (250ms, 30s, 5m, 1h) "
        "or ISO-8601 (PT30S)"
    )


def format_duration(value: timedelta) -> str:
    """The shortest Go-style spelling that parses back to the same value."""
    ms = round(value.total_seconds() * 1000)
    if ms == 0:
        return "0s"
    out = []
    for unit in ("h", "m", "s"):
        size = _UNIT_MS[unit]
        if ms >= size:
            count, ms = divmod(ms, size)
            out.append(f"{count}{unit}")
    if ms:
        out.append(f"{ms}ms")
    return "".join(out)
