"""The product's origin story, end to end: the document-analysis Parallel (four analysis
branches and an origin branch) replies to a real `aggregator serve`, whose releases go to a
final-processor sink. With duplicated and reordered deliveries and a branch that sometimes
never answers, every document yields exactly one aggregated event."""

import asyncio
from pathlib import Path

import httpx
import yaml

from tests.conftest import Serve
from tests.support.knative import Branch, BranchService, Faults, Parallel
from tests.support.sink import running_sink, wait_until
from tests.test_ingest import outbox_length

ANALYSES = ["virus-scanner", "content-classifier", "ocr-extractor", "metadata-extractor"]


def test_document_analysis_parallel(serve: Serve, redis_url: str, tmp_path: Path) -> None:
    documents = [f"doc-{n}" for n in range(40)]
    lost = set(documents[::4])  # metadata-extractor never answers these
    with running_sink() as final_processor:
        flows = tmp_path / "flows.yaml"
        flows.write_text(yaml.safe_dump({"flows": [{
            "name": "document-analysis", "branches": ANALYSES, "branch": "path",
            "correlation": "data:/documentId", "timeout": "6s", "sink": final_processor.url,
        }]}))  # fmt: skip
        aggregator = serve(AGGREGATOR_REDIS_URL=redis_url, AGGREGATOR_FLOWS_FILE=str(flows),
                           AGGREGATOR_SWEEP_INTERVAL="100ms", AGGREGATOR_LOG_LEVEL="warning")  # fmt: skip
        aggregator.wait_ready()
        services = [
            BranchService(
                name,
                loses=(lambda doc: doc in lost)
                if name == "metadata-extractor"
                else (lambda doc: False),
            )
            for name in ANALYSES
        ]
        base = f"{aggregator.base_url}/flows/document-analysis"
        branches = [Branch(s.url, f"{base}/branches/{s.name}") for s in services]
        branches.append(Branch(f"{base}/origin", None))  # the origin branch: no reply
        # Knative's default DeliverySpec: 5 retries; the timeout leaves room for them.
        parallel = Parallel(branches, Faults(duplicate=0.2, max_delay=0.05, retry=5, backoff=0.1))

        async def run() -> None:
            async with httpx.AsyncClient(timeout=10) as client:
                await asyncio.gather(*(parallel.send(client, f"upload-{d}", {"documentId": d})
                                       for d in documents))  # fmt: skip

        asyncio.run(run())
        received = wait_until(lambda: final_processor.got(len(documents)), timeout=30)
        wait_until(lambda: outbox_length(redis_url) == 0)
        for service in services:
            service.stop()
    events = [r.event() for r in received]
    by_document = {}
    for event in events:
        by_document.setdefault(event.attributes["subject"], set()).add(event.attributes["id"])
    assert sorted(by_document) == sorted(documents)
    assert all(len(ids) == 1 for ids in by_document.values())
    assert len(events) == len(documents)  # nothing released twice
    assert parallel.duplicates > 0
    for event in events:
        data = event.data_value()
        assert data["origin"]["type"] == "com.example.document.uploaded"
        if data["correlationId"] in lost:
            assert (data["status"], data["missing"]) == ("timeout", ["metadata-extractor"])
        else:
            assert (data["status"], data["missing"]) == ("complete", [])
            assert all(b["data"]["branch"] == name for name, b in data["branches"].items())
