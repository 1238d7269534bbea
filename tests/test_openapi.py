"""The OpenAPI document is valid, and the live service keeps to it: schemathesis generates
requests from it (with and without the token) and checks every answer against it."""

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, given, settings
from openapi_spec_validator import validate

from tests.support.processes import ServiceProcess, service_env

TOKEN = "openapi-test-token"


@pytest.fixture(scope="module")
def live(
    redis_server_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    folder = tmp_path_factory.mktemp("openapi")
    flows = folder / "flows.yaml"
    flows.write_text(yaml.safe_dump({"flows": [
        {"name": "default", "expected_branches": 2},
        {"name": "docs", "branches": ["a", "b"], "branch": "path", "correlation": "data:/id"},
        {"name": "seen", "kind": "dedup"},
    ]}))  # fmt: skip
    env = service_env(AGGREGATOR_REDIS_URL=redis_server_url, AGGREGATOR_FLOWS_FILE=str(flows),
                      AGGREGATOR_ADMIN_TOKEN=TOKEN, AGGREGATOR_MAX_EVENT_BYTES="65536",
                      AGGREGATOR_LOG_LEVEL="warning")  # fmt: skip
    service = ServiceProcess(env, Path(folder), ())
    service.wait_ready()
    yield service
    assert service.stop() == 0


@pytest.fixture(scope="module")
def api(live: ServiceProcess) -> schemathesis.BaseSchema:
    loaded = schemathesis.openapi.from_url(f"{live.base_url}/openapi.json")

    # Registered as auth (not as a plain header), so that schemathesis also checks that the
    # admin operations refuse requests without it.
    @loaded.auth()
    class Bearer:
        def get(self, case: schemathesis.Case, context: schemathesis.AuthContext) -> str:
            return TOKEN

        def set(
            self, case: schemathesis.Case, data: str, context: schemathesis.AuthContext
        ) -> None:
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}

    return loaded


def test_the_document_is_valid_openapi(live: ServiceProcess) -> None:
    document = httpx.get(f"{live.base_url}/openapi.json").json()
    validate(document)
    assert document["openapi"] == "3.1.0"
    assert {"/", "/flows/{flow}/branches/{branch}", "/aggregations", "/dead-letters/{id}/redrive",
            "/readyz", "/metrics", "/ui"} <= set(document["paths"])  # fmt: skip


EXAMPLES = int(os.environ.get("AGGREGATOR_SCHEMATHESIS_EXAMPLES", "40"))


def test_the_service_keeps_to_its_document(
    api: schemathesis.BaseSchema, live: ServiceProcess
) -> None:
    """Every operation, with generated requests (valid and invalid ones, with the token).
    A schema-valid CloudEvent can still lack what a flow needs (its correlation id, say), so
    a 4xx for "valid" input is right here; every other check applies."""
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 15

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
        def keeps_to_it(case: schemathesis.Case) -> None:
            case.call_and_validate(
                base_url=live.base_url,
                excluded_checks=[schemathesis.checks.positive_data_acceptance],
            )

        keeps_to_it()
