"""Configuration (DESIGN §7): four sources, later wins, every problem named by its source."""

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from aggregator.config import ConfigError, load_config
from aggregator.flows import FLOW_OPTIONS, AggregateFlow, DedupFlow
from aggregator.settings import Settings
from tests.support.processes import service_env

pytestmark = pytest.mark.usefixtures("no_aggregator_env")

DESIGN_EXAMPLE = """
flows:
  - name: document-analysis
    kind: aggregate
    branches: [virus-scanner, content-classifier, ocr-extractor, metadata-extractor]
    correlation: ce:correlationid
    branch: auto
    timeout: 60s
    idle_timeout: null
    on_timeout: emit-partial
    duplicate_branch: first-wins
    retention: 1h
    result: map
    delivery: auto
    sink: null
    dead_letter_sink: null
    retry: 5
    backoff_policy: exponential
    backoff_delay: PT0.2S
    delivery_timeout: 10s
    retry_after_max: 30s
    format: binary
    output: {type: null, source: null}
  - name: seen
    kind: dedup
    key: "ce:source,ce:id"
    window: 10m
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def annotation_line(key: str, value: str) -> str:
    return f"{key}={json.dumps(value, ensure_ascii=False)}"


class Sources:
    """Writes flow options into one of the three non-default sources."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tmp_path = tmp_path
        self.monkeypatch = monkeypatch

    def file(self, flows: list[dict[str, Any]]) -> Path:
        path = write(self.tmp_path, "flows.yaml", yaml.safe_dump({"flows": flows}))
        self.monkeypatch.setenv("AGGREGATOR_FLOWS_FILE", str(path))
        return path

    def annotations(self, annotations: dict[str, str]) -> Path:
        lines = [annotation_line(k, v) for k, v in sorted(annotations.items())]
        path = write(self.tmp_path, "annotations", "\n".join(lines))
        self.monkeypatch.setenv("AGGREGATOR_ANNOTATIONS_FILE", str(path))
        return path

    def env(self, variables: dict[str, str]) -> None:
        for key, value in variables.items():
            self.monkeypatch.setenv(key, value)

    def default_flow(self, source: str, options: dict[str, str]) -> str:
        """Configure flow `default` with `options` through `source`; return the place of
        the first option as problems name it."""
        option = next(iter(options))
        if source == "file":
            path = self.file([{"name": "default", **options}])
            return f"{path}: flows[0].{option}"
        if source == "annotation":
            keys = {f"aggregator.knative.dev/{k.replace('_', '-')}": v for k, v in options.items()}
            self.annotations(keys)
            return f"annotation aggregator.knative.dev/{option.replace('_', '-')}"
        self.env({f"AGGREGATOR_{k.upper()}": v for k, v in options.items()})
        return f"environment AGGREGATOR_{option.upper()}"


@pytest.fixture
def sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Sources:
    return Sources(tmp_path, monkeypatch)


def problems() -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config()
    return caught.value.problems


def aggregate(settings: Settings, name: str) -> AggregateFlow:
    flow = settings.flow(name)
    assert isinstance(flow, AggregateFlow)
    return flow


def test_defaults_have_no_flow() -> None:
    settings = load_config()
    assert settings.flows == ()
    assert settings.max_event_bytes == 1024 * 1024
    assert settings.redis_mode == "standalone"
    assert settings.log_format == "json"


def test_design_example_loads_with_every_field(sources: Sources, tmp_path: Path) -> None:
    path = write(tmp_path, "flows.yaml", DESIGN_EXAMPLE)
    sources.env({"AGGREGATOR_FLOWS_FILE": str(path)})
    settings = load_config()
    analysis = aggregate(settings, "document-analysis")
    assert analysis.branches == (
        "virus-scanner", "content-classifier", "ocr-extractor", "metadata-extractor",
    )  # fmt: skip
    assert analysis.expected == 4
    assert analysis.backoff_delay == timedelta(milliseconds=200)
    assert analysis == AggregateFlow(name="document-analysis", branches=analysis.branches)
    seen = settings.flow("seen")
    assert isinstance(seen, DedupFlow)
    assert [str(s) for s in seen.key] == ["ce:source", "ce:id"]
    assert seen.window == timedelta(minutes=10)
    assert settings.flow("default") is None


def test_later_sources_win_field_by_field(sources: Sources) -> None:
    sources.file(
        [
            {"name": "default", "expected_branches": 2, "timeout": "10s", "retry": 1},
            {"name": "named", "branches": ["a", "b"], "timeout": "10s", "result": "list"},
        ]
    )
    sources.annotations(
        {
            "aggregator.knative.dev/timeout": "20s",
            "aggregator.knative.dev/retry": "2",
            "named.flows.aggregator.knative.dev/timeout": "PT20S",
            "autoscaling.knative.dev/min-scale": "1",
        }
    )
    sources.env({"AGGREGATOR_TIMEOUT": "30s"})
    settings = load_config()
    default = aggregate(settings, "default")
    assert (default.expected, default.timeout, default.retry) == (2, timedelta(seconds=30), 2)
    named = aggregate(settings, "named")
    assert (named.branches, named.timeout, named.result) == (
        ("a", "b"), timedelta(seconds=20), "list",
    )  # fmt: skip


def test_annotations_create_named_flows(sources: Sources) -> None:
    sources.annotations(
        {
            "orders.flows.aggregator.knative.dev/branches": "inventory, payment,shipping",
            "orders.flows.aggregator.knative.dev/correlation": "data:/order/id",
            "orders.flows.aggregator.knative.dev/output-type": "com.example.orders.checked",
            "dedupe.flows.aggregator.knative.dev/kind": "dedup",
            "dedupe.flows.aggregator.knative.dev/window": "5m",
        }
    )
    settings = load_config()
    orders = aggregate(settings, "orders")
    assert orders.branches == ("inventory", "payment", "shipping")
    assert orders.correlation.pointer == ("order", "id")
    assert orders.output.type == "com.example.orders.checked"
    dedupe = settings.flow("dedupe")
    assert isinstance(dedupe, DedupFlow)
    assert dedupe.window == timedelta(minutes=5)
    assert settings.flow("default") is None


def test_annotation_escaping_reaches_the_flow(sources: Sources, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "annotations",
        'aggregator.knative.dev/branches="caf\\u00e9,na\\xc3\\xafve,tab\\tbed"\n'
        'aggregator.knative.dev/output-source="/agg/\\"quoted\\"\\\\x"',
    )
    sources.env({"AGGREGATOR_ANNOTATIONS_FILE": str(path)})
    default = aggregate(load_config(), "default")
    assert default.branches == ("café", "naïve", "tab\tbed")
    assert default.output.source == '/agg/"quoted"\\x'


def test_environment_configures_flow_default(sources: Sources) -> None:
    sources.env(
        {
            "AGGREGATOR_BRANCHES": "a,b,c",
            "AGGREGATOR_TIMEOUT": "PT5S",
            "AGGREGATOR_IDLE_TIMEOUT": "2s",
            "AGGREGATOR_OUTPUT_TYPE": "t",
            "AGGREGATOR_SINK": "http://sink.default.svc.cluster.local",
        }
    )
    default = aggregate(load_config(), "default")
    assert default.branches == ("a", "b", "c")
    assert default.idle_timeout == timedelta(seconds=2)
    assert default.output.type == "t"
    assert default.sink == "http://sink.default.svc.cluster.local"


def test_a_later_source_switches_names_to_a_count(sources: Sources) -> None:
    sources.file([{"name": "default", "branches": ["a", "b"]}])
    sources.annotations({"aggregator.knative.dev/expected-branches": "3"})
    default = aggregate(load_config(), "default")
    assert (default.branches, default.expected_branches) == (None, 3)
    sources.env({"AGGREGATOR_BRANCHES": "x"})
    default = aggregate(load_config(), "default")
    assert (default.branches, default.expected_branches) == (("x",), None)


@pytest.mark.parametrize("source", ["file", "annotation", "environment"])
def test_both_expectations_in_one_source_is_an_error(sources: Sources, source: str) -> None:
    where = sources.default_flow(source, {"branches": "a,b", "expected_branches": "2"})
    [problem] = problems()
    assert problem.startswith(where)
    assert "set exactly one of `branches` and `expected_branches`" in problem


@pytest.mark.parametrize("source", ["file", "annotation", "environment"])
def test_neither_expectation_is_an_error(sources: Sources, source: str) -> None:
    sources.default_flow(source, {"timeout": "5s"})
    [problem] = problems()
    assert "set exactly one of `branches` and `expected_branches`" in problem


BAD_VALUES = [
    ("expected_branches", "0", "greater than or equal to 1"),
    ("expected_branches", "four", "valid integer"),
    ("branches", "a,,b", "branch names must not be empty"),
    ("branches", "a,b,a", "branch names repeat: a"),
    ("kind", "join", "`kind` must be aggregate or dedup"),
    ("timeout", "soon", "invalid duration 'soon'"),
    ("timeout", "0s", "must be greater than zero"),
    ("timeout", "30", "invalid duration '30'"),
    ("idle_timeout", "-1s", "invalid duration"),
    ("retention", "forever", "invalid duration"),
    ("backoff_delay", "fast", "invalid duration"),
    ("delivery_timeout", "0ms", "must be greater than zero"),
    ("retry_after_max", "1 minute", "invalid duration"),
    ("on_timeout", "explode", "'emit-partial', 'discard' or 'dead-letter'"),
    ("duplicate_branch", "random", "'first-wins' or 'last-wins'"),
    ("result", "sum", "'map', 'merge' or 'list'"),
    ("delivery", "email", "'auto', 'reply' or 'sink'"),
    ("backoff_policy", "random", "'linear' or 'exponential'"),
    ("format", "xml", "'binary' or 'json'"),
    ("correlation", "header:x", "invalid source 'header:x'"),
    ("correlation", "data:documentId", "RFC 6901"),
    ("correlation", "data:/a~2", "RFC 6901"),
    ("correlation", "ce:Bad-Name", "lower-case letters and digits"),
    ("branch", "branchname", "invalid branch source"),
    ("branch", "data:x", "RFC 6901"),
    ("expected_from", "ce:", "invalid source"),
    ("sink", "ftp://example.com", "not an http:// or https:// URL"),
    ("dead_letter_sink", "example.com", "not an http:// or https:// URL"),
    ("retry", "-1", "greater than or equal to 0"),
    ("window", "5m", "not an option of a aggregate flow"),
]


@pytest.mark.parametrize("source", ["file", "annotation", "environment"])
@pytest.mark.parametrize(("option", "value", "message"), BAD_VALUES)
def test_bad_flow_values_name_their_source(
    sources: Sources, source: str, option: str, value: str, message: str
) -> None:
    base = {} if option in ("branches", "expected_branches") else {"expected_branches": "2"}
    where = sources.default_flow(source, {option: value, **base})
    [problem] = problems()
    assert problem.startswith(f"{where}: ") or (option == "kind" and where in problem)
    assert message in problem


DEDUP_BAD_VALUES = [
    ("key", "ce:source,source", "invalid source 'source'"),
    ("key", "", "ce:<attribute> or data:<JSON pointer>"),
    ("window", "0s", "must be greater than zero"),
    ("timeout", "5s", "not an option of a dedup flow"),
    ("branches", "a", "not an option of a dedup flow"),
]


@pytest.mark.parametrize("source", ["file", "annotation", "environment"])
@pytest.mark.parametrize(("option", "value", "message"), DEDUP_BAD_VALUES)
def test_bad_dedup_values_name_their_source(
    sources: Sources, source: str, option: str, value: str, message: str
) -> None:
    where = sources.default_flow(source, {option: value, "kind": "dedup"})
    [problem] = problems()
    assert problem.startswith(f"{where}: ")
    assert message in problem


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("Upper", "not a DNS label"),
        ("under_score", "not a DNS label"),
        ("-leading", "not a DNS label"),
        ("x" * 64, "not a DNS label"),
    ],
)
def test_flow_names_are_dns_labels(sources: Sources, name: str, message: str) -> None:
    path = sources.file([{"name": name, "expected_branches": 1}])
    [problem] = problems()
    assert problem.startswith(f"{path}: flows[0].name: ")
    assert message in problem


def test_annotation_flow_names_are_checked(sources: Sources) -> None:
    path = sources.annotations({"Bad_Name.flows.aggregator.knative.dev/expected-branches": "1"})
    [problem] = problems()
    assert "annotation Bad_Name.flows.aggregator.knative.dev/expected-branches" in problem
    assert "not a DNS label" in problem
    assert path.exists()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("flows: [unclosed", "not valid YAML"),
        ("- just a list", "expected a mapping with the single key `flows`"),
        ("flows: []\nextra: 1", "expected a mapping with the single key `flows`"),
        ("flows: {name: x}", "flows: expected a list of flows"),
        ("flows: [{expected_branches: 2}]", "flows[0]: expected a mapping with a string `name`"),
        ("flows: [name]", "flows[0]: expected a mapping with a string `name`"),
        (
            "flows: [{name: a, expected_branches: 1}, {name: a, expected_branches: 1}]",
            "flows[1].name: flow 'a' is defined twice",
        ),
        ("flows: [{name: a, expected_branches: 1, output: text}]", "flows[0].output: expected"),
        ("flows: [{name: a, expected_branches: 1, colour: red}]", "flows[0].colour: unknown"),
    ],
)
def test_flows_file_structure(sources: Sources, tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, "flows.yaml", text)
    sources.env({"AGGREGATOR_FLOWS_FILE": str(path)})
    [problem] = problems()
    assert problem.startswith(f"{path}: ")
    assert message in problem


def test_missing_flows_file(sources: Sources, tmp_path: Path) -> None:
    sources.env({"AGGREGATOR_FLOWS_FILE": str(tmp_path / "absent.yaml")})
    [problem] = problems()
    assert "absent.yaml: cannot read the flows file" in problem


def test_annotations_file_problems(sources: Sources, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "annotations",
        'aggregator.knative.dev/colour="red"\nbroken line\naggregator.knative.dev/timeout=30s',
    )
    sources.env({"AGGREGATOR_ANNOTATIONS_FILE": str(path)})
    assert problems() == [
        f'{path}: line 2: expected key="value"',
        f"{path}: line 3 (aggregator.knative.dev/timeout): value is not a double-quoted string",
        "annotation aggregator.knative.dev/colour: unknown option 'colour'",
    ]


def test_explicit_annotations_file_must_exist(sources: Sources, tmp_path: Path) -> None:
    sources.env({"AGGREGATOR_ANNOTATIONS_FILE": str(tmp_path / "absent")})
    [problem] = problems()
    assert "cannot read the annotations file" in problem


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("AGGREGATOR_MAX_PENDING", "lots", "valid integer"),
        ("AGGREGATOR_MAX_PENDING", "0", "greater than 0"),
        ("AGGREGATOR_MAX_EVENT_BYTES", "1MiB", "valid integer"),
        ("AGGREGATOR_REDIS_URL", "http://localhost:6379", "expected redis:// or rediss://"),
        ("AGGREGATOR_REDIS_MODE", "replicated", "'standalone', 'cluster' or 'sentinel'"),
        ("AGGREGATOR_REDIS_SENTINELS", "host-without-port", "is not host:port"),
        ("AGGREGATOR_ADMIN_OPEN", "perhaps", "valid boolean"),
        ("AGGREGATOR_LOG_LEVEL", "loud", "'debug', 'info', 'warning' or 'error'"),
        ("AGGREGATOR_LOG_FORMAT", "xml", "'json' or 'console'"),
        ("AGGREGATOR_REDIS_MIN_REPLICAS", "-1", "greater than or equal to 0"),
    ],
)
def test_bad_global_settings_name_their_variable(
    sources: Sources, variable: str, value: str, message: str
) -> None:
    sources.env({variable: value})
    [problem] = problems()
    assert problem.startswith(f"environment {variable}: ")
    assert message in problem


def test_min_replicas_is_refused_in_cluster_mode(sources: Sources) -> None:
    sources.env({"AGGREGATOR_REDIS_MODE": "cluster", "AGGREGATOR_REDIS_MIN_REPLICAS": "1"})
    [problem] = problems()
    assert problem.startswith("environment AGGREGATOR_REDIS_MIN_REPLICAS: not supported in cluster")


def test_global_settings_from_environment(sources: Sources) -> None:
    sources.env(
        {
            "AGGREGATOR_REDIS_URL": "redis://:pw@redis-0:6379/1,redis://redis-1:6379",
            "AGGREGATOR_REDIS_MODE": "cluster",
            "AGGREGATOR_REDIS_SENTINELS": "s1:26379, s2:26379",
            "AGGREGATOR_MAX_PENDING": "10",
            "AGGREGATOR_MAX_EVENT_BYTES": "65536",
            "AGGREGATOR_ADMIN_OPEN": "true",
            "AGGREGATOR_LOG_LEVEL": "DEBUG",
            "K_SINK": "http://broker-ingress.knative-eventing.svc.cluster.local/default/default",
        }
    )
    settings = load_config()
    assert settings.redis_mode == "cluster"
    assert settings.redis_sentinels == ("s1:26379", "s2:26379")
    assert (settings.max_pending, settings.max_event_bytes) == (10, 65536)
    assert settings.admin_open is True
    assert settings.log_level == "debug"
    assert settings.k_sink is not None
    assert settings.k_sink.endswith("/default/default")


def test_global_settings_do_not_collide_with_flow_options() -> None:
    assert not set(Settings.model_fields) & FLOW_OPTIONS


def test_every_problem_is_reported_at_once(sources: Sources) -> None:
    sources.file([{"name": "default", "expected_branches": 2, "timeout": "x"}])
    sources.annotations({"aggregator.knative.dev/retry": "-3"})
    sources.env({"AGGREGATOR_RESULT": "sum", "AGGREGATOR_MAX_PENDING": "none"})
    assert len(problems()) == 4


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aggregator", *args],
        env=service_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_config_command_prints_effective_configuration_masked(tmp_path: Path) -> None:
    path = write(tmp_path, "flows.yaml", DESIGN_EXAMPLE)
    done = run_cli(
        "config",
        AGGREGATOR_FLOWS_FILE=str(path),
        AGGREGATOR_ADMIN_TOKEN="s3cret-token",
        AGGREGATOR_REDIS_URL="redis://user:hunter2@redis:6379/0",
        AGGREGATOR_TIMEOUT="5s",
        AGGREGATOR_EXPECTED_BRANCHES="3",
    )
    assert done.returncode == 0, done.stderr
    assert "s3cret-token" not in done.stdout
    assert "hunter2" not in done.stdout
    document = yaml.safe_load(done.stdout)
    assert document["redis_url"] == "redis://user:***@redis:6379/0"
    assert document["admin_token"] == "**********"
    flows = {flow["name"]: flow for flow in document["flows"]}
    assert flows["default"]["timeout"] == "5s"
    assert flows["default"]["expected_branches"] == 3
    assert flows["document-analysis"]["backoff_delay"] == "200ms"
    assert flows["seen"]["key"] == "ce:source,ce:id"
    as_json = run_cli("config", "--json", AGGREGATOR_FLOWS_FILE=str(path))
    assert json.loads(as_json.stdout)["flows"][0]["name"] == "document-analysis"


def test_config_check(tmp_path: Path) -> None:
    good = run_cli("config", "--check", AGGREGATOR_EXPECTED_BRANCHES="2")
    assert good.returncode == 0
    assert "configuration ok: 1 flow(s)" in good.stdout
    bad = run_cli(
        "config", "--check", AGGREGATOR_EXPECTED_BRANCHES="0", AGGREGATOR_LOG_FORMAT="xml"
    )
    assert bad.returncode == 1
    assert bad.stderr.splitlines() == [
        "configuration error: environment AGGREGATOR_LOG_FORMAT: "
        "Input should be 'json' or 'console'",
        "configuration error: environment AGGREGATOR_EXPECTED_BRANCHES: "
        "Input should be greater than or equal to 1",
    ]
