"""The README's demo block, run as written against a live `aggregator serve`."""

import re
import subprocess
from pathlib import Path

from aggregator.codec import decode
from tests.conftest import Serve
from tests.test_serve import DEMO_FLOWS

README = Path(__file__).parent.parent / "README.md"


def demo_block() -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(r"<!-- demo:[^>]*-->\n```sh\n(.*?)```", text, re.DOTALL)
    assert match, "the README lost its demo block"
    return match.group(1)


def test_readme_demo_completes_one_aggregation(serve: Serve, redis_url: str) -> None:
    service = serve(AGGREGATOR_REDIS_URL=redis_url, AGGREGATOR_FLOWS_FILE=DEMO_FLOWS)
    service.wait_ready()
    script = demo_block().replace("http://127.0.0.1:8080", service.base_url)
    done = subprocess.run(["bash", "-c", script], capture_output=True, timeout=60, check=True)
    responses = done.stdout.split(b"HTTP/1.1 ")[1:]
    assert [r[:3] for r in responses] == [b"202", b"202", b"202", b"200"]
    assert all(b"aggregation-outcome: pending" in r for r in responses[:3])
    head, _, body = responses[3].partition(b"\r\n\r\n")
    headers = [
        tuple(part.strip() for part in line.split(b":", 1)) for line in head.split(b"\r\n")[1:]
    ]
    [event], _ = decode(headers, body.rstrip(b"\n"))
    assert event.attributes["type"] == "dev.knative.aggregator.completed"
    assert event.attributes["subject"] == "doc-1"
    data = event.data_value()
    assert data["received"] == [
        "virus-scanner", "content-classifier", "ocr-extractor", "metadata-extractor",
    ]  # fmt: skip
    assert data["branches"]["ocr-extractor"]["data"] == {
        "documentId": "doc-1",
        "ocr-extractor": "ok",
    }
