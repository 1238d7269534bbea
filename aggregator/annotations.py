"""The downward-API annotations file: `key="value"` lines as Kubernetes writes them.

The kubelet formats each annotation with Go's `%q`, so values are Go double-quoted string
literals: `\\n`, `\\"`, `\\\\`, `\\xNN`, `\\uNNNN`, octal and the other Go escapes can appear.
"""

import re

_SIMPLE_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    '"': '"',
}
_HEX_WIDTH = {"x": 2, "u": 4, "U": 8}
_OCTAL = re.compile(r"[0-7]{3}")


def go_unquote(literal: str) -> str:
    """Decode a Go double-quoted string literal, as `strconv.Unquote` does."""
    if len(literal) < 2 or literal[0] != '"' or literal[-1] != '"':
        raise ValueError("value is not a double-quoted string")
    body = literal[1:-1]
    out = bytearray()
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == '"':
            raise ValueError("unescaped '\"' inside the value")
        if ch != "\\":
            out += ch.encode()
            i += 1
            continue
        if i + 1 >= len(body):
            raise ValueError("value ends in a lone backslash")
        esc = body[i + 1]
        if esc in _SIMPLE_ESCAPES:
            out += _SIMPLE_ESCAPES[esc].encode()
            i += 2
        elif esc in _HEX_WIDTH:
            width = _HEX_WIDTH[esc]
            digits = body[i + 2 : i + 2 + width]
            if len(digits) != width or not all(c in "0123456789abcdefABCDEF" for c in digits):
                raise ValueError(f"bad \\{esc} escape")
            code = int(digits, 16)
            if esc == "x":
                out.append(code)
            else:
                if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
                    raise ValueError(f"\\{esc}{digits} is not a valid code point")
                out += chr(code).encode()
            i += 2 + width
        elif _OCTAL.fullmatch(body[i + 1 : i + 4]):
            code = int(body[i + 1 : i + 4], 8)
            if code > 0xFF:
                raise ValueError("octal escape above \\377")
            out.append(code)
            i += 4
        else:
            raise ValueError(f"unknown escape \\{esc}")
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError("value is not valid UTF-8") from exc


def parse_annotations(text: str) -> tuple[dict[str, str], list[str]]:
    """Parse the file; return the annotations and one problem per malformed line."""
    annotations: dict[str, str] = {}
    problems: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key:
            problems.append(f'line {number}: expected key="value"')
            continue
        try:
            annotations[key] = go_unquote(value)
        except ValueError as exc:
            problems.append(f"line {number} ({key}): {exc}")
    return annotations, problems
