import pytest

from aggregator.sources import parse_source


@pytest.mark.parametrize(
    ("text", "kind", "attribute", "pointer"),
    [
        ("ce:correlationid", "ce", "correlationid", ()),
        ("ce:subject", "ce", "subject", ()),
        ("ce:x1", "ce", "x1", ()),
        ("data:/documentId", "data", "", ("documentId",)),
        ("data:/a/b/0", "data", "", ("a", "b", "0")),
        ("data:/a~1b", "data", "", ("a/b",)),
        ("data:/m~0n", "data", "", ("m~n",)),
        ("data:/~01", "data", "", ("~1",)),
        ("data:/", "data", "", ("",)),
        ("data:/with space/ünï", "data", "", ("with space", "ünï")),
    ],
)
def test_valid_sources(text: str, kind: str, attribute: str, pointer: tuple[str, ...]) -> None:
    source = parse_source(text)
    assert (source.kind, source.attribute, source.pointer) == (kind, attribute, pointer)
    assert str(source) == text


@pytest.mark.parametrize(
    "text",
    [
        "correlationid",
        "ce:",
        "ce:Subject",
        "ce:corr-id",
        "ce:a_b",
        "data:",
        "data:documentId",
        "data:/a~2",
        "data:/a~",
        "header:x",
        "",
    ],
)
def test_invalid_sources(text: str) -> None:
    with pytest.raises(ValueError, match="invalid source"):
        parse_source(text)
