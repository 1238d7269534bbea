"""The Helm chart, rendered by the real Helm engine (helm-python-sdk: Helm's Go SDK in a
wheel). Core Kubernetes kinds are validated against their schemas; Knative kinds are checked
structurally; the flows in the values make a round trip through the annotations file the
kubelet would write and the service's own configuration loader."""

import os
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from aggregator.config import load_config
from aggregator.flows import FLOW_OPTIONS
from tests.test_annotations import go_quote

CHART = Path(__file__).parent.parent / "charts" / "aggregator"
KUBERNETES = "1.30.0"
CORE_KINDS = {"Secret", "ConfigMap", "StatefulSet", "NetworkPolicy"}
EXTERNAL = {"redis": {"enabled": False, "url": "redis://:pw@redis:6379/0"}}

DOCS_FLOW = {
    "branches": ["virus-scanner", "content-classifier", "ocr-extractor", "metadata-extractor"],
    "branch": "path",
    "correlation": "data:/documentId",
    "timeout": "90s",
    "idle_timeout": "15s",
    "output": {"type": "com.example.analyzed", "source": "/docs"},
    "retry": 3,
    "result": "merge",
}


def render(values: dict[str, Any] | None = None) -> tuple[list[dict[str, Any]], str]:
    """The manifests (parsed) and NOTES.txt of a release `rel` in namespace `ns`."""
    rendered = helm.Chart.load(CHART).render(values or {}, name="rel", namespace="ns")
    notes = rendered.pop("aggregator/templates/NOTES.txt", "")
    documents = [
        document for text in rendered.values() for document in yaml.safe_load_all(text) if document
    ]
    return documents, notes


def one(documents: list[dict[str, Any]], kind: str, api: str | None = None) -> dict[str, Any]:
    [found] = [
        d for d in documents if d["kind"] == kind and (api is None or d["apiVersion"] == api)
    ]
    return found


def knative_service(documents: list[dict[str, Any]]) -> dict[str, Any]:
    return one(documents, "Service", "serving.knative.dev/v1")


def container(documents: list[dict[str, Any]]) -> dict[str, Any]:
    [found] = knative_service(documents)["spec"]["template"]["spec"]["containers"]
    return found


def env(documents: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        item["name"]: item.get("value", item.get("valueFrom"))
        for item in container(documents)["env"]
    }


def validate_core_kinds(documents: list[dict[str, Any]]) -> None:
    for document in documents:
        if document["kind"] in CORE_KINDS or (
            document["kind"] == "Service" and document["apiVersion"] == "v1"
        ):
            kubernetes_validate.validate(document, KUBERNETES, strict=True)


@pytest.mark.parametrize(
    "values",
    [{}, {**EXTERNAL, "flows": {"document-analysis": DOCS_FLOW}, "serviceMonitor": {"enabled": True},
          "networkPolicy": {"enabled": True}, "flowsFile": {"enabled": True, "flows": []}}],
)  # fmt: skip
def test_lint_is_clean(values: dict[str, Any]) -> None:
    report = helm.lint(CHART, values, strict=True)
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_default_render_is_a_restricted_knative_service() -> None:
    documents, notes = render()
    validate_core_kinds(documents)
    service = knative_service(documents)
    template = service["spec"]["template"]
    assert service["metadata"]["name"] == "rel-aggregator"
    annotations = template["metadata"]["annotations"]
    assert annotations["autoscaling.knative.dev/min-scale"] == "1"
    assert annotations["autoscaling.knative.dev/class"] == "kpa.autoscaling.knative.dev"
    spec = template["spec"]
    assert (spec["containerConcurrency"], spec["timeoutSeconds"]) == (0, 300)
    main = container(documents)
    assert main["image"] == "knative-aggregator:0.1.0"
    assert main["readinessProbe"]["httpGet"] == {"path": "/readyz"}
    assert main["livenessProbe"]["httpGet"] == {"path": "/healthz"}
    assert main["securityContext"] == {
        "runAsNonRoot": True,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    [podinfo] = [v for v in spec["volumes"] if v["name"] == "podinfo"]
    [source] = podinfo["projected"]["sources"]
    assert source["downwardAPI"]["items"] == [
        {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}}
    ]
    assert {"name": "podinfo", "mountPath": "/etc/podinfo", "readOnly": True} in main[
        "volumeMounts"
    ]
    variables = env(documents)
    assert variables["AGGREGATOR_ANNOTATIONS_FILE"] == "/etc/podinfo/annotations"
    assert variables["AGGREGATOR_REDIS_URL"] == "redis://rel-aggregator-redis:6379/0"
    # The development Redis, clearly flagged.
    statefulset = one(documents, "StatefulSet")
    assert "--appendonly" in statefulset["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "development Redis" in notes
    assert not [d for d in documents if d["kind"] == "Secret"]


def test_external_redis_and_admin_token_go_through_a_secret() -> None:
    documents, notes = render({**EXTERNAL, "admin": {"token": "t0ken"}})
    validate_core_kinds(documents)
    secret = one(documents, "Secret")
    assert secret["stringData"] == {"redis-url": "redis://:pw@redis:6379/0", "admin-token": "t0ken"}
    variables = env(documents)
    assert variables["AGGREGATOR_REDIS_URL"] == {
        "secretKeyRef": {"name": "rel-aggregator", "key": "redis-url"}
    }
    assert variables["AGGREGATOR_ADMIN_TOKEN"]["secretKeyRef"]["key"] == "admin-token"
    assert not [d for d in documents if d["kind"] == "StatefulSet"]
    assert "development Redis" not in notes


def test_existing_secret() -> None:
    values = {"redis": {"enabled": False, "existingSecret": {"name": "mine", "urlKey": "url"}}}
    documents, _ = render(values)
    assert not [d for d in documents if d["kind"] == "Secret"]
    assert env(documents)["AGGREGATOR_REDIS_URL"] == {
        "secretKeyRef": {"name": "mine", "key": "url"}
    }


def test_sentinel_and_cluster_modes() -> None:
    sentinel = {"redis": {"enabled": False, "mode": "sentinel", "sentinels": ["s1:26379", "s2:26379"],
                          "sentinelMaster": "main"}}  # fmt: skip
    variables = env(render(sentinel)[0])
    assert variables["AGGREGATOR_REDIS_MODE"] == "sentinel"
    assert variables["AGGREGATOR_REDIS_SENTINELS"] == "s1:26379,s2:26379"
    assert variables["AGGREGATOR_REDIS_SENTINEL_MASTER"] == "main"
    cluster = {
        "redis": {"enabled": False, "mode": "cluster", "url": "redis://n1:6379,redis://n2:6379"}
    }
    assert env(render(cluster)[0])["AGGREGATOR_REDIS_MODE"] == "cluster"


def test_settings_env_and_autoscaling() -> None:
    values = {
        "settings": {"maxPending": 5000, "logFormat": "console", "adminOpen": False},
        "env": [{"name": "EXTRA", "value": "1"}],
        "service": {"containerConcurrency": 50, "timeoutSeconds": 60,
                    "autoscaling": {"minScale": 2, "maxScale": 20, "target": 70}},
    }  # fmt: skip
    documents, _ = render(values)
    variables = env(documents)
    assert variables["AGGREGATOR_MAX_PENDING"] == "5000"
    assert variables["AGGREGATOR_LOG_FORMAT"] == "console"
    assert variables["AGGREGATOR_ADMIN_OPEN"] == "false"
    assert variables["EXTRA"] == "1"
    template = knative_service(documents)["spec"]["template"]
    assert template["spec"]["containerConcurrency"] == 50
    annotations = template["metadata"]["annotations"]
    assert (
        annotations["autoscaling.knative.dev/min-scale"],
        annotations["autoscaling.knative.dev/target"],
    ) == ("2", "70")


@pytest.mark.parametrize(
    "sink",
    [{"ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "final-processor"}},
     {"uri": "http://final-processor.default.svc.cluster.local"}],
)  # fmt: skip
def test_sink_binding(sink: dict[str, Any]) -> None:
    values = {"sinkBinding": {"enabled": True, "sink": sink, "ceOverrides": {"cluster": "eu1"}}}
    documents, notes = render(values)
    binding = one(documents, "SinkBinding", "sources.knative.dev/v1")
    assert binding["spec"]["subject"] == {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "name": "rel-aggregator",
    }
    assert binding["spec"]["sink"] == sink
    assert binding["spec"]["ceOverrides"] == {"extensions": {"cluster": "eu1"}}
    assert "No SinkBinding" not in notes


def test_service_monitor_and_network_policy() -> None:
    documents, _ = render(
        {"serviceMonitor": {"enabled": True, "interval": "15s"}, "networkPolicy": {"enabled": True}}
    )
    validate_core_kinds(documents)
    monitor = one(documents, "ServiceMonitor", "monitoring.coreos.com/v1")
    assert monitor["spec"]["endpoints"] == [{"port": "http", "path": "/metrics", "interval": "15s"}]
    assert (
        monitor["spec"]["selector"]["matchLabels"]["serving.knative.dev/service"]
        == "rel-aggregator"
    )
    policy = one(documents, "NetworkPolicy")
    namespaces = [p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                  for p in policy["spec"]["ingress"][0]["from"] if "namespaceSelector" in p]  # fmt: skip
    assert namespaces == ["knative-serving", "knative-eventing"]


def write_kubelet_annotations(annotations: dict[str, str], path: Path) -> None:
    """The file the kubelet writes for a downwardAPI metadata.annotations item."""
    path.write_text(
        "\n".join(f"{key}={go_quote(value)}" for key, value in sorted(annotations.items()))
    )


def effective_flows(monkeypatch: pytest.MonkeyPatch, **files: Path) -> dict[str, Any]:
    for key in list(os.environ):
        if key.startswith(("AGGREGATOR_", "K_")):
            monkeypatch.delenv(key)
    for variable, path in files.items():
        monkeypatch.setenv(variable, str(path))
    settings = load_config()
    return {flow.name: flow.model_dump(mode="json") for flow in settings.flows}


def expected_flows(flows: dict[str, Any]) -> dict[str, Any]:
    from pydantic import TypeAdapter

    from aggregator.flows import Flow

    adapter: TypeAdapter[Any] = TypeAdapter(Flow)
    return {name: adapter.dump_python(adapter.validate_python({"name": name, **options}), mode="json")
            for name, options in flows.items()}  # fmt: skip


def test_flows_round_trip_through_the_downward_api(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flows = {
        "default": {"expected_branches": 3, "correlation": "ce:subject", "on_timeout": "discard"},
        "document-analysis": DOCS_FLOW,
        "quotes": {
            "branches": ['say "hi"', "back\\slash", "tab\there", "ünïcode"],
            "retention": "2h",
        },
        "seen": {"kind": "dedup", "key": ["ce:source", "data:/order/id"], "window": "PT5M"},
    }
    documents, notes = render({"flows": flows})
    annotations = knative_service(documents)["spec"]["template"]["metadata"]["annotations"]
    assert annotations["document-analysis.flows.aggregator.knative.dev/idle-timeout"] == "15s"
    assert annotations["aggregator.knative.dev/expected-branches"] == "3"
    path = tmp_path / "annotations"
    write_kubelet_annotations(annotations, path)
    assert effective_flows(monkeypatch, AGGREGATOR_ANNOTATIONS_FILE=path) == expected_flows(flows)
    assert "/flows/document-analysis/branches/ocr-extractor" in notes
    assert "/flows/document-analysis/origin" in notes
    assert "/dedup/seen" in notes


def test_flows_file_configmap_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file_flows = [{"name": "document-analysis", **DOCS_FLOW}]
    documents, _ = render({"flowsFile": {"enabled": True, "flows": file_flows}})
    validate_core_kinds(documents)
    configmap = one(documents, "ConfigMap")
    path = tmp_path / "flows.yaml"
    path.write_text(configmap["data"]["flows.yaml"])
    empty = tmp_path / "none"
    empty.write_text("")
    flows = effective_flows(
        monkeypatch, AGGREGATOR_FLOWS_FILE=path, AGGREGATOR_ANNOTATIONS_FILE=empty
    )
    assert flows == expected_flows({"document-analysis": DOCS_FLOW})
    assert env(documents)["AGGREGATOR_FLOWS_FILE"] == "/etc/aggregator/flows.yaml"
    assert {"name": "flows", "mountPath": "/etc/aggregator", "readOnly": True} in container(
        documents
    )["volumeMounts"]


def test_the_schema_knows_every_flow_option() -> None:
    schema = helm.Chart.load(CHART).schema
    assert schema is not None
    flow_options = set(schema["properties"]["flows"]["additionalProperties"]["properties"])
    assert flow_options == {o for o in FLOW_OPTIONS if not o.startswith("output_")} | {"output"}


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"redis": {"mode": "replicated"}}, "/redis/mode"),
        ({"redis": {"url": "http://redis"}}, "/redis/url"),
        ({"flows": {"Bad_Name": {}}}, "Bad_Name"),
        ({"flows": {"x": {"colour": "red"}}}, "colour"),
        ({"flows": {"x": {"timeout": "soon"}}}, "/flows/x/timeout"),
        ({"flows": {"x": {"on_timeout": "explode"}}}, "/flows/x/on_timeout"),
        ({"flows": {"x": {"expected_branches": 0}}}, "/flows/x/expected_branches"),
        ({"flows": {"x": {"correlation": "header:x"}}}, "/flows/x/correlation"),
        ({"service": {"containerConcurrency": -1}}, "containerConcurrency"),
        ({"service": {"autoscaling": {"class": "magic"}}}, "/service/autoscaling/class"),
        ({"image": {"pullPolicy": "Sometimes"}}, "pullPolicy"),
        ({"sinkBinding": {"ceOverrides": {"Bad": "x"}}}, "Bad"),
        ({"settings": {"MAX_PENDING": 1}}, "MAX_PENDING"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_the_schema_rejects_bad_values(values: dict[str, Any], message: str) -> None:
    with pytest.raises(helm.HelmError, match=message):
        helm.Chart.load(CHART).validate_schema(values)
    with pytest.raises(helm.HelmError):
        render(values)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"redis": {"enabled": False}}, "set redis.url or redis.existingSecret.name"),
        (
            {"redis": {"enabled": False, "mode": "sentinel"}},
            "redis.mode sentinel needs redis.sentinels",
        ),
        ({"sinkBinding": {"enabled": True}}, "needs sinkBinding.sink.ref or sinkBinding.sink.uri"),
    ],
)
def test_incomplete_values_fail_with_a_message(values: dict[str, Any], message: str) -> None:
    with pytest.raises(helm.HelmError, match=message):
        render(values)


@pytest.mark.parametrize("example", ["document-analysis", "sequence", "broker-trigger"])
def test_examples_render(example: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = CHART / "examples" / example
    values = yaml.safe_load((folder / "values.yaml").read_text())
    documents, _ = render(values)
    validate_core_kinds(documents)
    annotations = knative_service(documents)["spec"]["template"]["metadata"]["annotations"]
    path = tmp_path / "annotations"
    write_kubelet_annotations(annotations, path)
    assert effective_flows(monkeypatch, AGGREGATOR_ANNOTATIONS_FILE=path) == expected_flows(
        values["flows"]
    )
    for manifest in folder.glob("*.yaml"):
        if manifest.name != "values.yaml":
            assert all(
                d["apiVersion"] and d["kind"] for d in yaml.safe_load_all(manifest.read_text())
            )


def test_the_parallel_example_replies_to_the_flow_branches() -> None:
    folder = CHART / "examples" / "document-analysis"
    flow = yaml.safe_load((folder / "values.yaml").read_text())["flows"]["document-analysis"]
    [parallel] = yaml.safe_load_all((folder / "parallel.yaml").read_text())
    replies = [b["reply"]["uri"] for b in parallel["spec"]["branches"] if "reply" in b]
    assert replies == [f"/flows/document-analysis/branches/{b}" for b in flow["branches"]]
    subscribers = [b["subscriber"].get("uri") for b in parallel["spec"]["branches"]]
    assert "/flows/document-analysis/origin" in subscribers
