"""deploy/kubernetes/: the kustomize base and the per-target overlay build, and every object they
make validates against the saved Kubernetes and prometheus-operator schemas.

Offline: `kubectl kustomize` renders locally, and the schemas are fixtures
(tests/fixtures/k8s-schemas/, README.md there names where each came from).  Validation is
strict, as `kubectl apply --validate=strict` is: a field the schema does not know is an error,
so a misspelt `readonlyRootFilesystem` fails here rather than being dropped by the API server.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
import urllib.parse
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # no stubs in the dev extra
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy" / "kubernetes"
BASE = DEPLOY / "base"
OVERLAY = DEPLOY / "overlays" / "per-target"
SCHEMAS = ROOT / "tests" / "fixtures" / "k8s-schemas"
SECRETS_DIR = "/run/secrets/stack-exporter/"

# apiVersion -> the saved schema file that holds its kinds
K8S_FILES = {"apps/v1": "apps-v1.json", "v1": "core-v1.json"}
CRD_FILES = {
    "ServiceMonitor": "monitoring.coreos.com_servicemonitors.json",
    "PrometheusRule": "monitoring.coreos.com_prometheusrules.json",
    "ScrapeConfig": "monitoring.coreos.com_scrapeconfigs.json",
}

Obj = dict[str, Any]


def kustomize(path: Path) -> list[Obj]:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl (with its built-in kustomize) is needed to build deploy/kubernetes/"
    done = subprocess.run([kubectl, "kustomize", str(path)], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, f"kubectl kustomize {path.relative_to(ROOT)} failed:\n{done.stderr}"
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def strict(node: Any) -> Any:
    """Reject unknown fields: every object schema with `properties` and no other rule for extra keys."""
    if isinstance(node, dict):
        out = {k: strict(v) for k, v in node.items()}
        if (
            "properties" in out
            and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")
        ):
            out["additionalProperties"] = False
        return out
    if isinstance(node, list):
        return [strict(v) for v in node]
    return node


@cache
def _load(name: str) -> Any:
    return strict(json.loads((SCHEMAS / name).read_text()))


def schema_for(obj: Obj) -> Obj:
    api_version, kind = obj.get("apiVersion", ""), obj.get("kind", "")
    if api_version in K8S_FILES:
        doc = _load(K8S_FILES[api_version])
        group, _, version = api_version.rpartition("/")
        for name, schema in doc["components"]["schemas"].items():
            gvks = schema.get("x-kubernetes-group-version-kind", [])
            if {"group": group, "version": version, "kind": kind} in gvks:
                return {"$ref": f"#/components/schemas/{name}", "components": doc["components"]}
    elif kind in CRD_FILES:
        doc = _load(CRD_FILES[kind])
        group, _, version = api_version.partition("/")
        if group == doc["group"] and version in doc["versions"]:
            return doc["versions"][version]  # type: ignore[no-any-return]
    raise LookupError(f"no saved schema for {api_version} {kind}: add it to tests/fixtures/k8s-schemas/")


def problems(obj: Obj) -> list[str]:
    """Every schema violation of one object, as `Kind/name: path: message`."""
    where = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
    validator = jsonschema.Draft4Validator(schema_for(obj))
    return [
        f"{where}: {'.'.join(str(p) for p in err.absolute_path) or '(root)'}: {err.message}"
        for err in sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path)))
    ]


def by_kind(objs: list[Obj], kind: str) -> list[Obj]:
    return [o for o in objs if o["kind"] == kind]


def one(objs: list[Obj], kind: str) -> Obj:
    found = by_kind(objs, kind)
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


@pytest.fixture(scope="module")
def base() -> list[Obj]:
    return kustomize(BASE)


@pytest.fixture(scope="module")
def overlay() -> list[Obj]:
    return kustomize(OVERLAY)


# ---------------------------------------------------------------------------- schemas


def test_base_objects_validate(base: list[Obj]) -> None:
    assert sorted(o["kind"] for o in base) == sorted(
        ["ConfigMap", "Deployment", "PrometheusRule", "Secret", "Service", "ServiceMonitor"]
    )
    assert [p for o in base for p in problems(o)] == []


def test_overlay_objects_validate(overlay: list[Obj]) -> None:
    kinds = sorted(o["kind"] for o in overlay)
    assert kinds == sorted(
        ["ConfigMap", "Deployment", "PrometheusRule", "Secret", "Service", "ServiceMonitor"] + ["ScrapeConfig"] * 2
    )
    assert [p for o in overlay for p in problems(o)] == []
    assert {o["metadata"].get("namespace") for o in overlay} == {"monitoring"}


def _set(obj: Obj, path: str, value: Any) -> Obj:
    out = copy.deepcopy(obj)
    node: Any = out
    keys = [int(k) if k.isdigit() else k for k in path.split(".")]
    for key in keys[:-1]:
        node = node[key]
    if value is _DELETE:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return out


_DELETE = object()
CONTAINER = "spec.template.spec.containers.0"


@pytest.mark.parametrize(
    ("kind", "path", "value", "expected"),
    [
        # a misspelt field: the API server would drop it silently without strict validation
        ("Deployment", f"{CONTAINER}.securityContext.readonlyRootFilesystem", True, "readonlyRootFilesystem"),
        ("Deployment", "spec.replicas", "two", "'two' is not of type 'integer'"),
        ("Deployment", "spec.selector", _DELETE, "'selector' is a required property"),
        ("Deployment", f"{CONTAINER}.livenessProbe.httpGet.port", 9847.5, "9847.5"),
        ("Service", "spec.ports.0.port", "http", "'http' is not of type 'integer'"),
        ("ServiceMonitor", "spec.endpoints.0.interval", "30 seconds", "does not match"),
        ("ServiceMonitor", "spec.endpoints.0.scheme", "ftp", "is not one of"),
        ("PrometheusRule", "spec.groups.0.name", _DELETE, "'name' is a required property"),
        ("PrometheusRule", "spec.groups.0.rules.0.expr", [1], "is not valid under any of the given schemas"),
    ],
)
def test_broken_objects_are_rejected(base: list[Obj], kind: str, path: str, value: Any, expected: str) -> None:
    obj = one(base, kind)
    assert problems(obj) == []
    found = problems(_set(obj, path, value))
    assert found, f"{kind} with {path}={value!r} passed validation"
    assert any(expected in p for p in found), found


def test_broken_scrape_config_is_rejected(overlay: list[Obj]) -> None:
    obj = by_kind(overlay, "ScrapeConfig")[0]
    assert any("'url' is a required property" in p for p in problems(_set(obj, "spec.httpSDConfigs.0.url", _DELETE)))
    assert any("does not match" in p for p in problems(_set(obj, "spec.scrapeInterval", "15 s")))


def test_unknown_kinds_have_no_schema() -> None:
    with pytest.raises(LookupError, match=r"no saved schema for batch/v1 CronJob"):
        problems({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "x"}})
    with pytest.raises(LookupError, match=r"monitoring\.coreos\.com/v1 ScrapeConfig"):
        problems({"apiVersion": "monitoring.coreos.com/v1", "kind": "ScrapeConfig", "metadata": {"name": "x"}})


# ---------------------------------------------------------------------------- what the base must say


def test_deployment_runs_hardened_with_probes_and_resources(base: list[Obj]) -> None:
    pod = one(base, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert container["livenessProbe"]["httpGet"] == {"path": "/-/healthy", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/-/ready", "port": "http"}
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= container["resources"][kind].keys()
    assert container["ports"] == [{"name": "http", "containerPort": 9847, "protocol": "TCP"}]


def test_volumes_point_at_the_built_config_and_secret(base: list[Obj]) -> None:
    pod = one(base, "Deployment")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    # the generated ConfigMap's hashed name, so a config change rolls the pods
    assert volumes["config"]["configMap"]["name"] == one(base, "ConfigMap")["metadata"]["name"]
    assert re.fullmatch(r"stack-exporter-config-[a-z0-9]{10}", volumes["config"]["configMap"]["name"])
    assert volumes["secrets"]["secret"]["secretName"] == one(base, "Secret")["metadata"]["name"]
    mounts = {m["name"]: m for m in pod["containers"][0]["volumeMounts"]}
    assert mounts["secrets"]["mountPath"] + "/" == SECRETS_DIR
    assert mounts["config"]["readOnly"] and mounts["secrets"]["readOnly"]
    args = pod["containers"][0]["args"]
    assert f"--config.file={mounts['config']['mountPath']}/config.yml" in args


def test_service_and_service_monitor_meet(base: list[Obj]) -> None:
    service, monitor = one(base, "Service"), one(base, "ServiceMonitor")
    pod_labels = one(base, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert [e["port"] for e in monitor["spec"]["endpoints"]] == [p["name"] for p in service["spec"]["ports"]]
    # the job label is the Service's name; the rule pack selects job="stack-exporter"
    assert service["metadata"]["name"] == "stack-exporter"


def _config_text(base: list[Obj]) -> str:
    text: str = one(base, "ConfigMap")["data"]["config.yml"]
    return text


def test_secret_example_holds_every_file_the_config_reads(base: list[Obj]) -> None:
    paths = set(re.findall(r"_file:\s*(\S+)", _config_text(base)))
    assert paths, "the example config reads no secret file"
    assert all(p.startswith(SECRETS_DIR) for p in paths), paths
    keys = set(one(base, "Secret")["stringData"])
    assert {p.removeprefix(SECRETS_DIR) for p in paths} == keys


def test_config_passes_check_config(base: list[Obj], tmp_path: Path) -> None:
    """The ConfigMap's config loads, with the Secret's keys as files (relocated from /run/secrets)."""
    for key, value in one(base, "Secret")["stringData"].items():
        (tmp_path / key).write_text(value)
    config = tmp_path / "config.yml"
    config.write_text(_config_text(base).replace(SECRETS_DIR, f"{tmp_path}/"))
    done = subprocess.run(
        [sys.executable, "-m", "exporter", "--config.file", str(config), "--check-config"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_prometheus_rule_is_the_generated_one(base: list[Obj]) -> None:
    generated = yaml.safe_load((ROOT / "rules" / "generated" / "prometheus_rule_object.yaml").read_text())
    assert one(base, "PrometheusRule") == generated, (
        "deploy/kubernetes/base/prometheus-rule.yaml is stale: run make generate (it writes both)"
    )


# ---------------------------------------------------------------------------- the per-target overlay


def test_overlay_scrapes_every_source_exactly_once_through_sd(overlay: list[Obj]) -> None:
    from exporter.collectors import SOURCES
    from exporter.sd import COLLECTOR_LABEL, SD_PATH

    # the exporter's own series only: a plain /metrics would collect every target again
    (endpoint,) = one(overlay, "ServiceMonitor")["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics" and endpoint["params"] == {"targets": ["none"]}
    service = one(overlay, "Service")
    meta, port = service["metadata"], service["spec"]["ports"][0]["port"]
    address = f"{meta['name']}.{meta['namespace']}.svc:{port}"
    jobs = by_kind(overlay, "ScrapeConfig")
    scraped_by: dict[str, list[str]] = {name: [] for name in SOURCES}
    for job in jobs:
        spec = job["spec"]
        assert spec["jobName"] == "stack-exporter"  # the rule pack's selector
        (sd,) = spec["httpSDConfigs"]
        url = urllib.parse.urlsplit(sd["url"])
        assert (url.netloc, url.path) == (address, SD_PATH)
        (select,) = [r for r in spec["relabelings"] if r.get("action") in ("keep", "drop")]
        assert select["sourceLabels"] == [COLLECTOR_LABEL]
        for source in scraped_by:
            matched = re.fullmatch(select["regex"], source) is not None
            if matched == (select["action"] == "keep"):
                scraped_by[source].append(job["metadata"]["name"])
        # Prometheus shards split by target, not by the one address all targets share
        assert {"sourceLabels": ["instance"], "targetLabel": "__tmp_hash"} in spec["relabelings"]
    assert {source: len(names) for source, names in scraped_by.items()} == dict.fromkeys(scraped_by, 1), scraped_by
    intervals = {job["metadata"]["name"]: job["spec"]["scrapeInterval"] for job in jobs}
    assert intervals == {"stack-exporter-servers": "15s", "stack-exporter-apis": "2m"}
