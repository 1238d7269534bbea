"""The downward-API file as the kubelet writes it: sorted `key=%q` lines (Go's quoting)."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aggregator.annotations import go_unquote, parse_annotations

_GO_SIMPLE = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
              "\v": "\\v", "\\": "\\\\", '"': '\\"'}  # fmt: skip


def go_quote(text: str) -> str:
    """What Go's %q writes for a string: the oracle for the parser."""
    out = []
    for ch in text:
        if ch in _GO_SIMPLE:
            out.append(_GO_SIMPLE[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'


@pytest.mark.parametrize(
    ("literal", "expected"),
    [
        ('""', ""),
        ('"4"', "4"),
        ('"a,b, c"', "a,b, c"),
        ('"line\\nbreak"', "line\nbreak"),
        ('"say \\"hi\\""', 'say "hi"'),
        ('"back\\\\slash"', "back\\slash"),
        ('"tab\\there"', "tab\there"),
        ('"\\x41\\x42"', "AB"),
        ('"\\xc3\\xa9"', "é"),
        ('"\\u00e9"', "é"),
        ('"\\U0001f600"', "\U0001f600"),
        ('"\\101"', "A"),
        ('"ünïcode"', "ünïcode"),
        ('"{\\"a\\": 1}"', '{"a": 1}'),
    ],
)
def test_go_unquote(literal: str, expected: str) -> None:
    assert go_unquote(literal) == expected


@pytest.mark.parametrize(
    "literal",
    ["4", '"unterminated', "'single'", '"bad \\q escape"', '"trailing\\"', '"\\x4"',
     '"\\xff"', '"\\ud800"', '"\\400"', '"inner " quote"', '"\\U00110000"'],
)  # fmt: skip
def test_go_unquote_rejects(literal: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        go_unquote(literal)


@given(st.text())
def test_round_trips_what_go_writes(text: str) -> None:
    assert go_unquote(go_quote(text)) == text


def test_parses_a_kubelet_file() -> None:
    # The kubelet sorts keys and writes no newline after the last line.
    text = (
        'aggregator.knative.dev/branches="a,b"\n'
        'aggregator.knative.dev/timeout="30s"\n'
        'autoscaling.knative.dev/min-scale="1"\n'
        'note="multi\\nline \\"quoted\\""'
    )
    annotations, problems = parse_annotations(text)
    assert problems == []
    assert annotations == {
        "aggregator.knative.dev/branches": "a,b",
        "aggregator.knative.dev/timeout": "30s",
        "autoscaling.knative.dev/min-scale": "1",
        "note": 'multi\nline "quoted"',
    }


def test_reports_malformed_lines_by_number() -> None:
    annotations, problems = parse_annotations('good="1"\nno-equals-sign\nbad=unquoted\n\n=x\n')
    assert annotations == {"good": "1"}
    assert problems == [
        'line 2: expected key="value"',
        "line 3 (bad): value is not a double-quoted string",
        'line 5: expected key="value"',
    ]
