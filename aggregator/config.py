"""Assemble the effective configuration from its four sources (DESIGN §7), later wins:
defaults, the flows file, the downward-API annotations file, environment variables.

Each flow option remembers where it was set, so that every problem is reported with its
source: the file and field, the annotation key or the variable.
"""

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from aggregator.annotations import parse_annotations
from aggregator.flows import FLOW_OPTIONS
from aggregator.settings import DEFAULT_ANNOTATIONS_FILE, ENV_PREFIX, Settings, SourceFiles

DEFAULT_FLOW = "default"
ANNOTATION_DOMAIN = "aggregator.knative.dev/"
NAMED_FLOW_DOMAIN = ".flows." + ANNOTATION_DOMAIN
# A later source that names one of these replaces the other, so that an annotation can
# switch a flow from names to a count without the file's choice making it invalid.
_EXCLUSIVE = {"branches": "expected_branches", "expected_branches": "branches"}


class ConfigError(Exception):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass
class _FlowOptions:
    """Flat flow options per flow, each with the place it was set."""

    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    origins: dict[str, dict[str, str]] = field(default_factory=dict)
    layers: dict[str, dict[str, str]] = field(default_factory=dict)
    layer: str = ""

    def set(self, flow: str, option: str, value: Any, where: str) -> None:
        values = self.values.setdefault(flow, {})
        origins = self.origins.setdefault(flow, {})
        layers = self.layers.setdefault(flow, {})
        partner = _EXCLUSIVE.get(option)
        if partner in values and layers[partner] != self.layer:
            del values[partner], origins[partner], layers[partner]
        values[option] = value
        origins[option] = where
        layers[option] = self.layer

    def models(self) -> list[dict[str, Any]]:
        """The flows as the model expects them: `output_*` options nested under `output`."""
        out = []
        for name, flat in self.values.items():
            flow: dict[str, Any] = {"name": name}
            for option, value in flat.items():
                if option.startswith("output_"):
                    flow.setdefault("output", {})[option.removeprefix("output_")] = value
                else:
                    flow[option] = value
            out.append(flow)
        return out


def load_config(environ: Mapping[str, str] = os.environ) -> Settings:
    """Read every source; raise ConfigError listing every problem found."""
    try:
        files = SourceFiles()
    except ValidationError as exc:
        raise ConfigError([_global_problem(e) for e in exc.errors()]) from None
    problems: list[str] = []
    flows = _FlowOptions()
    if files.flows_file is not None:
        flows.layer = "file"
        _read_flows_file(files.flows_file, flows, problems)
    explicit = f"{ENV_PREFIX}ANNOTATIONS_FILE" in environ
    if (
        explicit
        or files.annotations_file != DEFAULT_ANNOTATIONS_FILE
        or (files.annotations_file.exists())
    ):
        flows.layer = "annotations"
        _read_annotations(files.annotations_file, flows, problems)
    flows.layer = "environment"
    _read_environment(environ, flows)
    models = flows.models()
    try:
        settings = Settings(flows=models)
    except ValidationError as exc:
        problems += [_problem(e, models, flows) for e in exc.errors()]
    if problems:
        raise ConfigError(problems)
    return settings


def _read_flows_file(path: Path, flows: _FlowOptions, problems: list[str]) -> None:
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        problems.append(f"{path}: cannot read the flows file: {exc.strerror}")
        return
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        problems.append(f"{path}: not valid YAML: {exc}".replace("\n", " "))
        return
    if not isinstance(document, dict) or set(document) - {"flows"}:
        problems.append(f"{path}: expected a mapping with the single key `flows`")
        return
    items = document.get("flows") or []
    if not isinstance(items, list):
        problems.append(f"{path}: flows: expected a list of flows")
        return
    seen: set[str] = set()
    for index, item in enumerate(items):
        where = f"{path}: flows[{index}]"
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            problems.append(f"{where}: expected a mapping with a string `name`")
            continue
        name = item["name"]
        if name in seen:
            problems.append(f"{where}.name: flow {name!r} is defined twice")
            continue
        seen.add(name)
        flows.values.setdefault(name, {})
        flows.origins.setdefault(name, {})["name"] = f"{where}.name"
        for key, value in item.items():
            if key == "name":
                continue
            if key == "output":
                if not isinstance(value, dict):
                    problems.append(f"{where}.output: expected a mapping with type and source")
                    continue
                for sub, sub_value in value.items():
                    flows.set(name, f"output_{sub}", sub_value, f"{where}.output.{sub}")
            else:
                flows.set(name, str(key), value, f"{where}.{key}")


def _read_annotations(path: Path, flows: _FlowOptions, problems: list[str]) -> None:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{path}: cannot read the annotations file: {exc}")
        return
    annotations, malformed = parse_annotations(text)
    problems += [f"{path}: {problem}" for problem in malformed]
    for key, value in annotations.items():
        if key.startswith(ANNOTATION_DOMAIN):
            flow, option = DEFAULT_FLOW, key.removeprefix(ANNOTATION_DOMAIN)
        elif NAMED_FLOW_DOMAIN in key:
            flow, _, option = key.partition(NAMED_FLOW_DOMAIN)
        else:
            continue
        option = option.replace("-", "_")
        where = f"annotation {key}"
        if option not in FLOW_OPTIONS:
            problems.append(f"{where}: unknown option {option.replace('_', '-')!r}")
            continue
        flows.origins.setdefault(flow, {}).setdefault("name", where)
        flows.set(flow, option, value or None, where)


def _read_environment(environ: Mapping[str, str], flows: _FlowOptions) -> None:
    for option in sorted(FLOW_OPTIONS):
        variable = ENV_PREFIX + option.upper()
        if variable in environ:
            flows.origins.setdefault(DEFAULT_FLOW, {}).setdefault("name", f"environment {variable}")
            flows.set(DEFAULT_FLOW, option, environ[variable] or None, f"environment {variable}")


def _message(error: Any) -> str:
    return str(error["msg"]).removeprefix("Value error, ")


def _global_problem(error: Any) -> str:
    name = str(error["loc"][0])
    variable = name if name.isupper() else ENV_PREFIX + name.upper()
    return f"environment {variable}: {_message(error)}"


def _problem(error: Any, models: list[dict[str, Any]], flows: _FlowOptions) -> str:
    loc = error["loc"]
    if loc[0] != "flows" or len(loc) < 2 or not isinstance(loc[1], int):
        return _global_problem(error)
    flow = models[loc[1]]
    name = flow["name"]
    origins = flows.origins.get(name, {})
    path = [str(part) for part in loc[2:] if part not in ("aggregate", "dedup")]
    if not path:
        mentioned = [where for option, where in origins.items() if f"`{option}`" in _message(error)]
        where = ", ".join(mentioned) or origins.get("name", f"flow {name!r}")
        return f"{where}: flow {name!r}: {_message(error)}"
    option = f"output_{path[1]}" if path[0] == "output" and len(path) > 1 else path[0]
    where = origins.get(option, f"flow {name!r}")
    if error["type"] == "extra_forbidden":
        kind = flow.get("kind", "aggregate")
        known = option in FLOW_OPTIONS
        detail = f"not an option of a {kind} flow" if known else "unknown option"
        return f"{where}: {detail}"
    return f"{where}: {_message(error)}"
