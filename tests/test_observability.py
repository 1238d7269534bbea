"""Metrics (/metrics, also across uvicorn workers) and logs (JSON lines with request context,
one line per release, never payloads or tokens)."""

import asyncio
import json
from pathlib import Path

import httpx
import pytest
import structlog
import structlog.testing
import yaml
from prometheus_client.parser import text_string_to_metric_families

from aggregator import metrics
from aggregator.logs import Outage
from tests.conftest import Serve
from tests.support.app import app_client, binary, make_settings
from tests.support.sink import eventually, wait_until
from tests.test_ingest import dead_letters

pytestmark = pytest.mark.usefixtures("no_aggregator_env")

PAIR = {"name": "pair", "expected_branches": 2}


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_count_ingest_releases_and_read_redis_gauges(redis_url: str) -> None:
    async with app_client(make_settings(redis_url, PAIR)) as client:
        before = (await client.get("/metrics")).text
        await client.post("/flows/pair", **binary({}, correlationid="secret-order-1", source="/a"))
        await client.post("/flows/pair", **binary({}, correlationid="secret-order-1", source="/a"))
        await client.post("/flows/pair", **binary({}, correlationid="secret-order-2", source="/a"))
        await client.post("/flows/pair", **binary({}, correlationid="secret-order-1", source="/b"))
        await eventually(lambda: dead_letters(redis_url))  # nowhere to deliver
        response = await client.get("/metrics")
    after = response.text
    assert response.headers["content-type"].startswith("text/plain")

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("aggregator_ingested_events_total", flow="pair", outcome="pending") == 2
    assert delta("aggregator_ingested_events_total", flow="pair", outcome="duplicate") == 1
    assert delta("aggregator_ingested_events_total", flow="pair", outcome="complete") == 1
    assert delta("aggregator_releases_total", flow="pair", status="complete") == 1
    assert delta("aggregator_release_latency_seconds_count", flow="pair") == 1
    assert delta("aggregator_ingest_latency_seconds_count", flow="pair") == 4
    assert delta("aggregator_dead_letters_total", flow="pair", reason="store") == 1
    assert value(after, "aggregator_pending_aggregations", flow="pair") == 1
    assert value(after, "aggregator_dead_letters_stored") == 1
    assert value(after, "aggregator_outbox_entries") == 0
    assert "secret-order" not in after  # labels are flows and outcomes, never ids


def test_metrics_add_up_across_workers(serve: Serve, redis_url: str, tmp_path: Path) -> None:
    flows = tmp_path / "flows.yaml"
    flows.write_text(yaml.safe_dump({"flows": [PAIR]}))
    service = serve(
        "--workers",
        "2",
        AGGREGATOR_REDIS_URL=redis_url,
        AGGREGATOR_FLOWS_FILE=str(flows),
        AGGREGATOR_LOG_LEVEL="debug",
    )
    service.wait_ready()

    async def send(first: int, count: int) -> None:
        # A fresh connection per request, so that both workers get some.
        async def one(n: int) -> None:
            async with httpx.AsyncClient() as client:
                response = await client.post(
                    f"{service.base_url}/flows/pair", **binary({}, correlationid=f"c{n}")
                )
                assert response.status_code == 202

        await asyncio.gather(*(one(n) for n in range(first, first + count)))

    def ingested_by() -> set[object]:
        return {json.loads(line)["pid"] for line in list(service.lines) if '"ingested"' in line}

    # Which worker accepts a connection is the kernel's choice: send until both took some.
    sent = 0
    while len(ingested_by()) < 2 and sent < 400:
        asyncio.run(send(sent, 40))
        sent += 40
        wait_until(
            lambda sent=sent: sum('"ingested"' in line for line in list(service.lines)) == sent
        )
    assert len(ingested_by()) == 2
    for _ in range(6):
        text = httpx.get(f"{service.base_url}/metrics").text
        assert (
            value(text, "aggregator_ingested_events_total", flow="pair", outcome="pending") == sent
        )
        assert value(text, "aggregator_pending_aggregations", flow="pair") == sent


def test_logs_are_json_with_context_and_keep_secrets_out(
    serve: Serve, redis_url: str, tmp_path: Path
) -> None:
    flows = tmp_path / "flows.yaml"
    flows.write_text(yaml.safe_dump({"flows": [{**PAIR, "delivery": "reply"}]}))
    token = "t0ken-that-must-not-leak"
    service = serve(AGGREGATOR_REDIS_URL=redis_url, AGGREGATOR_FLOWS_FILE=str(flows),
                    AGGREGATOR_LOG_LEVEL="debug", AGGREGATOR_ADMIN_TOKEN=token)  # fmt: skip
    service.wait_ready()
    payload = {"card": "PAYLOAD-MARKER-4111"}
    for source in ("/a", "/b"):
        httpx.post(
            f"{service.base_url}/flows/pair",
            **binary(payload, id="e1", correlationid="order-7", source=source),
        )
    httpx.get(f"{service.base_url}/aggregations", headers={"authorization": f"Bearer {token}"})
    httpx.get(
        f"{service.base_url}/aggregations",
        headers={"authorization": "Bearer wrong-token-also-secret"},
    )
    released = service.wait_for_line(lambda line: '"released"' in line)
    service.stop()
    lines = [json.loads(line) for line in service.lines if line.startswith("{")]
    assert len(lines) == len(service.lines)  # every line is JSON
    ingested = [line for line in lines if line["event"] == "ingested"]
    assert ingested[0]["flow"] == "pair"
    assert (ingested[0]["correlation_id"], ingested[0]["branch"], ingested[0]["event_id"]) == (
        "order-7",
        "/a",
        "e1",
    )
    assert [line["outcome"] for line in ingested] == ["pending", "complete"]
    release = json.loads(released)
    assert (release["status"], release["correlation_id"]) == ("complete", "order-7")
    assert release["latency_ms"] >= 0
    output = service.output()
    assert "PAYLOAD-MARKER" not in output
    assert token not in output
    assert "wrong-token-also-secret" not in output


def test_labelled_serves_the_child_that_labels_gives() -> None:
    child = metrics.labelled(metrics.INGESTED, "some-flow", "pending")
    assert child is metrics.INGESTED.labels("some-flow", "pending")
    assert metrics.labelled(metrics.INGESTED, "some-flow", "pending") is child
    assert metrics.labelled(metrics.INGESTED, "some-flow", "late") is not child


def test_an_outage_is_logged_when_it_starts_now_and_then_and_when_it_is_over() -> None:
    now = [0.0]
    with structlog.testing.capture_logs() as lines:
        outage = Outage(
            structlog.get_logger("test"), "redis down", "redis back", every=30, clock=lambda: now[0]
        )
        outage.over()  # no outage: nothing to say
        for _ in range(5):
            outage.failed(error="refused")
            now[0] += 10  # failures at 0, 10, 20, 30, 40 s
        outage.over()
        outage.over()
        outage.failed(error="refused")  # a new outage
    assert [(line["event"], line.get("failures")) for line in lines] == [
        ("redis down", 1),
        ("redis down", 3),  # the ones at 10, 20 and 30 s
        ("redis back", None),
        ("redis down", 1),
    ]
    assert lines[0]["log_level"] == "warning"
    assert lines[2]["log_level"] == "info"
