from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("250ms", timedelta(milliseconds=250)),
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("1h", timedelta(hours=1)),
        ("1h30m", timedelta(minutes=90)),
        ("1.5s", timedelta(milliseconds=1500)),
        ("2d", timedelta(days=2)),
        ("0s", timedelta(0)),
        ("PT30S", timedelta(seconds=30)),
        ("PT0.2S", timedelta(milliseconds=200)),
        ("PT1M", timedelta(minutes=1)),
        ("PT1H30M", timedelta(minutes=90)),
        ("P1D", timedelta(days=1)),
        ("P1DT2H", timedelta(hours=26)),
        ("pt10s", timedelta(seconds=10)),
        (" 10s ", timedelta(seconds=10)),
    ],
)
def test_valid_durations(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["", "10", "-5s", "5 s", "s", "5x", "P", "PT", "P1DT", "PT5", "1M", "PT-1S", "abc"]
)
def test_invalid_durations(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


@given(st.integers(min_value=0, max_value=10**10))
def test_format_round_trips(ms: int) -> None:
    value = timedelta(milliseconds=ms)
    assert parse_duration(format_duration(value)) == value


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(seconds=60), "1m"),
        (timedelta(milliseconds=200), "200ms"),
        (timedelta(seconds=90), "1m30s"),
        (timedelta(hours=1), "1h"),
        (timedelta(0), "0s"),
    ],
)
def test_format_is_short(value: timedelta, text: str) -> None:
    assert format_duration(value) == text
