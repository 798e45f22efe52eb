"""Kubernetes manifests (packaging=docker with kubernetes=yes): present only when asked for, valid for
pinned Kubernetes versions, clean under checkov, in agreement with the server's own settings; the
Ingress component carries the nginx site's limits; a rolling update's shutdown order checked on paper
(no cluster runs here)."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from cookiecutter.exceptions import FailedHookException
from cookiecutter.main import cookiecutter

from tests.conftest import HOST_PYTHON, SERVERS, TEMPLATE_DIR, TOOLS_DIR, bake_project, project_env, run

# Validated against the oldest release where the preStop sleep action is stable (1.34; on by
# default since 1.30) and the newest that the pinned kubernetes-validate knows.
KUBERNETES_VERSIONS = ("1.34.0", "1.37.0")
# A release whose API has no preStop sleep: strict validation must refuse the Deployment there.
VERSION_WITHOUT_PRESTOP_SLEEP = "1.28.0"
# Seconds the process needs after the graceful timeout: lifespan shutdown and exit.
SHUTDOWN_MARGIN_SECONDS = 5
# The image's unprivileged user (see the Dockerfile's USER line).
IMAGE_UID = 10001

KUBE_DIR = Path("deploy/kubernetes")
BASE = KUBE_DIR / "base"
OVERLAY = KUBE_DIR / "overlays/production"
INGRESS = KUBE_DIR / "components/ingress"
EXPECTED_FILES = {
    INGRESS / "kustomization.yaml",
    INGRESS / "ingress.yaml",
    BASE / "kustomization.yaml",
    BASE / "namespace.yaml",
    BASE / "deployment.yaml",
    BASE / "service.yaml",
    BASE / "hpa.yaml",
    BASE / "pdb.yaml",
    BASE / "networkpolicy.yaml",
    OVERLAY / "kustomization.yaml",
}
RESOURCE_FILES = sorted(path for path in EXPECTED_FILES if path.name != "kustomization.yaml")
KUSTOMIZATIONS = (BASE, OVERLAY)


def tool(name: str) -> str:
    """A command-line tool from the test environment (or PATH)."""
    found = shutil.which(name, path=f"{TOOLS_DIR}{os.pathsep}{os.environ.get('PATH', '')}")
    assert found, f"{name} is not installed: install the template's test group (pyproject.toml)"
    return found


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bake_project(
        tmp_path_factory.mktemp("kubernetes"), python_version=HOST_PYTHON, packaging="docker", kubernetes="yes"
    )


def render(project: Path, folder: Path) -> list[dict[str, Any]]:
    result = run([tool("kubectl"), "kustomize", str(folder)], project, timeout=120)
    assert result.returncode == 0, result.stderr
    return [document for document in yaml.safe_load_all(result.stdout) if document]


@pytest.fixture(scope="module")
def rendered(project: Path) -> dict[Path, list[dict[str, Any]]]:
    return {folder: render(project, folder) for folder in KUSTOMIZATIONS}


def one_of_kind(resources: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    """The one resource of a kind."""
    matches = [resource for resource in resources if resource["kind"] == kind]
    assert len(matches) == 1, f"expected one {kind}, found {len(matches)}"
    return matches[0]


def container(resources: list[dict[str, Any]]) -> dict[str, Any]:
    containers = one_of_kind(resources, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def pod_spec(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return one_of_kind(resources, "Deployment")["spec"]["template"]["spec"]


# --- which projects get manifests ---------------------------------------------------------------


def test_kubernetes_yes_installs_the_base_and_the_overlay(project: Path) -> None:
    installed = {path.relative_to(project) for path in (project / KUBE_DIR).rglob("*") if path.is_file()}

    assert installed == EXPECTED_FILES


def test_kubernetes_no_installs_no_manifests(tmp_path: Path) -> None:
    baked = bake_project(tmp_path, python_version=HOST_PYTHON, packaging="docker", kubernetes="no")

    assert not (baked / KUBE_DIR).exists()


def test_no_staged_file_is_left_behind(project: Path) -> None:
    assert not (project / "_variants").exists()


def test_regenerating_without_kubernetes_keeps_the_manifests_and_says_so(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    answers = {"python_version": HOST_PYTHON, "packaging": "docker"}
    bake_project(tmp_path, **answers, kubernetes="yes")
    capfd.readouterr()
    cookiecutter(
        str(TEMPLATE_DIR),
        no_input=True,
        output_dir=str(tmp_path),
        overwrite_if_exists=True,
        extra_context={**answers, "kubernetes": "no"},
    )

    notes = [line for line in capfd.readouterr().out.splitlines() if "belongs to kubernetes=yes and was kept" in line]
    assert len(notes) == len(EXPECTED_FILES)


@pytest.mark.parametrize("server", SERVERS)
def test_kubernetes_needs_the_docker_packaging(tmp_path: Path, capfd: pytest.CaptureFixture[str], server: str) -> None:
    with pytest.raises(FailedHookException):
        bake_project(tmp_path, server=server, packaging="host", kubernetes="yes")

    errors = [line for line in capfd.readouterr().err.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: kubernetes: 'yes' needs packaging docker (the manifests run the project's image), not 'host'"
    ]


def test_kubernetes_needs_a_slug_kubernetes_accepts(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(FailedHookException):
        bake_project(tmp_path, packaging="docker", kubernetes="yes", project_slug="my_service")

    errors = [line for line in capfd.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert errors[0].startswith("error: kubernetes: 'yes' needs a project_slug Kubernetes accepts as a name")


# --- schema validation ----------------------------------------------------------------------------


@pytest.mark.scan
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("path", RESOURCE_FILES, ids=str)
def test_resource_file_validates(project: Path, path: Path, version: str) -> None:
    documents = [document for document in yaml.safe_load_all((project / path).read_text()) if document]

    for document in documents:
        kubernetes_validate.validate(document, version, strict=True)  # raises on the first problem


@pytest.mark.scan
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=str)
def test_rendered_kustomization_validates(
    rendered: dict[Path, list[dict[str, Any]]], folder: Path, version: str
) -> None:
    for document in rendered[folder]:
        kubernetes_validate.validate(document, version, strict=True)


@pytest.mark.scan
def test_validation_pins_the_version(rendered: dict[Path, list[dict[str, Any]]]) -> None:
    """The validator has teeth: an API without the preStop sleep action refuses the Deployment."""
    deployment = one_of_kind(rendered[BASE], "Deployment")

    with pytest.raises(kubernetes_validate.ValidationError, match="sleep"):
        kubernetes_validate.validate(deployment, VERSION_WITHOUT_PRESTOP_SLEEP, strict=True)


@pytest.mark.scan
def test_rendered_output_has_every_kind(rendered: dict[Path, list[dict[str, Any]]]) -> None:
    kinds = sorted(resource["kind"] for resource in rendered[OVERLAY])

    assert kinds == sorted(
        [
            "ConfigMap",
            "Deployment",
            "HorizontalPodAutoscaler",
            "Ingress",
            "Namespace",
            "NetworkPolicy",
            "PodDisruptionBudget",
            "Service",
        ]
    )


# --- what the manifests say -------------------------------------------------------------------------

SECURITY_SETTINGS = [
    ("pod", "runAsNonRoot", True),
    ("pod", "runAsUser", IMAGE_UID),
    ("pod", "seccompProfile", {"type": "RuntimeDefault"}),
    ("container", "runAsNonRoot", True),
    ("container", "allowPrivilegeEscalation", False),
    ("container", "readOnlyRootFilesystem", True),
    ("container", "capabilities", {"drop": ["ALL"]}),
    ("container", "seccompProfile", {"type": "RuntimeDefault"}),
]


@pytest.mark.parametrize(("level", "name", "expected"), SECURITY_SETTINGS, ids=lambda value: str(value))
@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=str)
def test_restricted_pod_security(
    rendered: dict[Path, list[dict[str, Any]]], folder: Path, level: str, name: str, expected: object
) -> None:
    resources = rendered[folder]
    context = pod_spec(resources) if level == "pod" else container(resources)

    assert context["securityContext"][name] == expected


def test_namespace_enforces_the_restricted_profile(rendered: dict[Path, list[dict[str, Any]]]) -> None:
    labels = one_of_kind(rendered[OVERLAY], "Namespace")["metadata"]["labels"]

    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_tmp_is_a_writable_empty_dir(rendered: dict[Path, list[dict[str, Any]]]) -> None:
    resources = rendered[OVERLAY]
    mounts = {mount["mountPath"]: mount["name"] for mount in container(resources)["volumeMounts"]}
    volumes = {volume["name"]: volume for volume in pod_spec(resources)["volumes"]}

    assert "emptyDir" in volumes[mounts["/tmp"]]


def test_image_user_is_the_one_the_pod_runs_as(project: Path) -> None:
    user_lines = [
        line.split()[1] for line in (project / "Dockerfile").read_text().splitlines() if line.startswith("USER ")
    ]

    assert user_lines[-1] == f"{IMAGE_UID}:{IMAGE_UID}"


@pytest.mark.parametrize(
    ("probe", "path"), [("startupProbe", "/livez"), ("livenessProbe", "/livez"), ("readinessProbe", "/readyz")]
)
def test_probe_paths(rendered: dict[Path, list[dict[str, Any]]], probe: str, path: str) -> None:
    assert container(rendered[OVERLAY])[probe]["httpGet"]["path"] == path


@pytest.mark.parametrize("kind", ["requests", "limits"])
@pytest.mark.parametrize("resource", ["cpu", "memory"])
def test_cpu_and_memory_requests_and_limits(
    rendered: dict[Path, list[dict[str, Any]]], kind: str, resource: str
) -> None:
    assert container(rendered[OVERLAY])["resources"][kind][resource]


def test_one_server_process_per_pod(rendered: dict[Path, list[dict[str, Any]]]) -> None:
    env = {item["name"]: item.get("value") for item in container(rendered[OVERLAY])["env"]}

    assert env["WEB_CONCURRENCY"] == "1"


def test_replica_count_is_left_to_the_autoscaler(rendered: dict[Path, list[dict[str, Any]]]) -> None:
    assert "replicas" not in one_of_kind(rendered[OVERLAY], "Deployment")["spec"]


def test_autoscaler_scales_the_deployment(rendered: dict[Path, list[dict[str, Any]]]) -> None:
    resources = rendered[OVERLAY]
    target = one_of_kind(resources, "HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]

    assert (target["kind"], target["name"]) == ("Deployment", one_of_kind(resources, "Deployment")["metadata"]["name"])


@pytest.mark.parametrize(
    ("kind", "selector"),
    [
        ("Service", ("spec", "selector")),
        ("PodDisruptionBudget", ("spec", "selector", "matchLabels")),
        ("NetworkPolicy", ("spec", "podSelector", "matchLabels")),
    ],
)
def test_selectors_pick_the_pods(
    rendered: dict[Path, list[dict[str, Any]]], kind: str, selector: tuple[str, ...]
) -> None:
    resources = rendered[OVERLAY]
    labels = one_of_kind(resources, "Deployment")["spec"]["template"]["metadata"]["labels"]
    value: Any = one_of_kind(resources, kind)
    for key in selector:
        value = value[key]

    assert value.items() <= labels.items()


def test_settings_come_from_the_config_map(rendered: dict[Path, list[dict[str, Any]]]) -> None:
    resources = rendered[OVERLAY]
    sources = [source["configMapRef"]["name"] for source in container(resources)["envFrom"] if "configMapRef" in source]

    assert sources == [one_of_kind(resources, "ConfigMap")["metadata"]["name"]]


def test_secrets_are_referenced_not_defined(rendered: dict[Path, list[dict[str, Any]]]) -> None:
    resources = rendered[OVERLAY]
    secret_refs = [source["secretRef"] for source in container(resources)["envFrom"] if "secretRef" in source]

    assert [kind for kind in (resource["kind"] for resource in resources) if kind == "Secret"] == []
    assert len(secret_refs) == 1


# --- agreement with the server's own settings ----------------------------------------------------


def image_environment(dockerfile: str) -> dict[str, str]:
    """ENV of the Dockerfile's last stage (the image that runs), PATH aside."""
    instructions = dockerfile.replace("\\\n", " ").splitlines()
    last_from = max(index for index, line in enumerate(instructions) if line.startswith("FROM "))
    env: dict[str, str] = {}
    for line in instructions[last_from:]:
        if line.startswith("ENV "):
            for pair in shlex.split(line[4:]):
                name, _, value = pair.partition("=")
                env[name] = value
    env.pop("PATH", None)
    return env


def pod_environment(project: Path, resources: list[dict[str, Any]]) -> dict[str, str]:
    """What the server process sees in the pod: the image's ENV, the ConfigMap, the container's env."""
    env = image_environment((project / "Dockerfile").read_text())
    env.update(one_of_kind(resources, "ConfigMap")["data"])
    env.update({item["name"]: item["value"] for item in container(resources)["env"]})
    return env


# Run in the baked project's own virtualenv: the settings and routes the server really has.
SERVER_FACTS = """
import json
from {package}.main import create_app
from {package}.settings import Settings
settings = Settings(_env_file=None)
paths = sorted(create_app(settings).openapi()["paths"])
print(json.dumps({{"settings": settings.model_dump(), "paths": paths}}))
"""


@pytest.fixture(scope="module")
def server_facts(
    installed_project: Any, rendered: dict[Path, list[dict[str, Any]]], tmp_path_factory: pytest.TempPathFactory
) -> dict[Path, dict[str, Any]]:
    """Per kustomization: the effective settings inside the pod, and the app's routes."""
    project = installed_project(SERVERS[0], "docker", variant="kubernetes", kubernetes="yes")
    package = json.loads((project / ".cruft.json").read_text())["context"]["cookiecutter"]["package_name"]
    workdir = tmp_path_factory.mktemp("pod-cwd")  # no .env file of the project's is read
    facts = {}
    for folder, resources in rendered.items():
        env = {"PYTHONDONTWRITEBYTECODE": "1", **pod_environment(project, resources)}
        result = run([str(project / ".venv/bin/python"), "-c", SERVER_FACTS.format(package=package)], workdir, env=env)
        assert result.returncode == 0, result.stderr
        facts[folder] = json.loads(result.stdout.splitlines()[-1])
    return facts


@pytest.mark.install
@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=str)
def test_grace_period_outlasts_prestop_and_graceful_shutdown(
    rendered: dict[Path, list[dict[str, Any]]], server_facts: dict[Path, dict[str, Any]], folder: Path
) -> None:
    resources = rendered[folder]
    grace = pod_spec(resources)["terminationGracePeriodSeconds"]
    pre_stop = container(resources)["lifecycle"]["preStop"]["sleep"]["seconds"]
    graceful = server_facts[folder]["settings"]["graceful_timeout"]

    assert grace > pre_stop + graceful + SHUTDOWN_MARGIN_SECONDS


@pytest.mark.install
@pytest.mark.parametrize(
    ("setting", "expected"),
    [("web_concurrency", 1), ("host", "0.0.0.0"), ("log_format", "json")],
)
@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=str)
def test_server_settings_in_the_pod(
    server_facts: dict[Path, dict[str, Any]], folder: Path, setting: str, expected: object
) -> None:
    assert server_facts[folder]["settings"][setting] == expected


@pytest.mark.install
def test_production_overlay_runs_in_production_mode(server_facts: dict[Path, dict[str, Any]]) -> None:
    """Production mode refuses debug and any-host ('*'): the settings above loaded, so neither is set."""
    assert server_facts[OVERLAY]["settings"]["environment"] == "production"


@pytest.mark.install
def test_production_overlay_lists_its_hosts(server_facts: dict[Path, dict[str, Any]]) -> None:
    assert "*" not in server_facts[OVERLAY]["settings"]["allowed_hosts"]


@pytest.mark.install
def test_container_port_is_the_server_port(
    rendered: dict[Path, list[dict[str, Any]]], server_facts: dict[Path, dict[str, Any]]
) -> None:
    ports = {port["name"]: port["containerPort"] for port in container(rendered[OVERLAY])["ports"]}

    assert ports["http"] == server_facts[OVERLAY]["settings"]["port"]


@pytest.mark.install
@pytest.mark.parametrize("probe", ["startupProbe", "livenessProbe", "readinessProbe"])
def test_probe_paths_are_routes_of_the_app(
    rendered: dict[Path, list[dict[str, Any]]], server_facts: dict[Path, dict[str, Any]], probe: str
) -> None:
    assert container(rendered[OVERLAY])[probe]["httpGet"]["path"] in server_facts[OVERLAY]["paths"]


# --- a rolling update's shutdown, on paper -----------------------------------------------------------


def graceful_timeout_on_paper(project: Path, resources: list[dict[str, Any]]) -> int:
    """The server's graceful timeout in the pod: the ConfigMap's value, else .env.example's default."""
    package = json.loads((project / ".cruft.json").read_text())["context"]["cookiecutter"]["package_name"]
    name = f"{package.upper()}_GRACEFUL_TIMEOUT"
    defaults = dict(line.split("=", 1) for line in (project / ".env.example").read_text().splitlines() if "=" in line)
    return int(one_of_kind(resources, "ConfigMap")["data"].get(name, defaults[name]))


@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=str)
def test_grace_period_covers_prestop_then_the_graceful_timeout_on_paper(
    project: Path, rendered: dict[Path, list[dict[str, Any]]], folder: Path
) -> None:
    # preStop runs first and counts against the grace period; SIGTERM follows it, then the server's
    # graceful timeout, then the lifespan shutdown and exit (the margin). Past the period: SIGKILL.
    resources = rendered[folder]
    grace = pod_spec(resources)["terminationGracePeriodSeconds"]
    pre_stop = container(resources)["lifecycle"]["preStop"]["sleep"]["seconds"]
    graceful = graceful_timeout_on_paper(project, resources)

    assert (pre_stop > 0, grace > pre_stop + graceful + SHUTDOWN_MARGIN_SECONDS) == (True, True), (
        f"terminationGracePeriodSeconds {grace} <= preStop {pre_stop} + graceful {graceful} + margin"
    )


def test_a_rolling_update_starts_a_new_pod_before_an_old_one_leaves(
    rendered: dict[Path, list[dict[str, Any]]],
) -> None:
    strategy = one_of_kind(rendered[OVERLAY], "Deployment")["spec"]["strategy"]

    assert (
        strategy["type"],
        strategy["rollingUpdate"]["maxUnavailable"],
        strategy["rollingUpdate"]["maxSurge"] >= 1,
    ) == (
        "RollingUpdate",
        0,
        True,
    )


def test_a_pod_takes_traffic_only_once_ready(rendered: dict[Path, list[dict[str, Any]]]) -> None:
    # The readiness probe gates the endpoints: a new pod gets requests only after /readyz answers 200.
    probe = container(rendered[OVERLAY])["readinessProbe"]

    assert (probe["httpGet"]["path"], probe["httpGet"]["port"]) == ("/readyz", "http")


def test_the_network_policy_comment_names_the_ports_it_opens(
    project: Path, rendered: dict[Path, list[dict[str, Any]]]
) -> None:
    text = (project / BASE / "networkpolicy.yaml").read_text()
    comment = " ".join(line.lstrip("# ") for line in text.splitlines() if line.startswith("#"))
    port = container(rendered[BASE])["ports"][0]["containerPort"]

    assert f"exactly one port of the pods: TCP {port} (the container port named http" in comment


# --- the Ingress component ----------------------------------------------------------------------------

ANNOTATION = "nginx.ingress.kubernetes.io/"


def ingress(rendered: dict[Path, list[dict[str, Any]]]) -> dict[str, Any]:
    return one_of_kind(rendered[OVERLAY], "Ingress")


def nginx_site(project: Path) -> str:
    (site,) = (project / "deploy/nginx").glob("*.conf")
    return site.read_text()


def site_directive(site: str, pattern: str) -> str:
    match = re.search(pattern, site, re.MULTILINE)
    assert match, f"the nginx site has no line matching {pattern!r}"
    return match[1]


def test_the_ingress_routes_to_the_services_http_port(rendered: dict[Path, list[dict[str, Any]]]) -> None:
    (rule,) = ingress(rendered)["spec"]["rules"]
    (path,) = rule["http"]["paths"]
    service = one_of_kind(rendered[OVERLAY], "Service")

    assert path["backend"]["service"]["name"] == service["metadata"]["name"]
    assert path["backend"]["service"]["port"]["name"] in [port["name"] for port in service["spec"]["ports"]]


def test_the_ingress_gets_its_certificate_from_cert_manager(rendered: dict[Path, list[dict[str, Any]]]) -> None:
    spec = ingress(rendered)["spec"]
    (tls,) = spec["tls"]

    assert "cert-manager.io/cluster-issuer" in ingress(rendered)["metadata"]["annotations"]
    assert (tls["hosts"], bool(tls["secretName"])) == ([rule["host"] for rule in spec["rules"]], True)


def test_the_ingress_host_is_an_allowed_host(rendered: dict[Path, list[dict[str, Any]]], project: Path) -> None:
    package = json.loads((project / ".cruft.json").read_text())["context"]["cookiecutter"]["package_name"]
    allowed = one_of_kind(rendered[OVERLAY], "ConfigMap")["data"][f"{package.upper()}_ALLOWED_HOSTS"].split(",")

    assert [rule["host"] for rule in ingress(rendered)["spec"]["rules"]] == allowed


@pytest.mark.parametrize(
    ("annotation", "site_pattern"),
    [
        ("proxy-body-size", r"^\s*client_max_body_size\s+(\S+);"),
        ("limit-rps", r"^\s*limit_req_zone\s.*rate=(\d+)r/s;"),
        ("limit-connections", r"^\s*limit_conn\s+\S+\s+(\d+);"),
        ("proxy-next-upstream", r"^\s*proxy_next_upstream\s+([^;]+);"),
        ("proxy-next-upstream-tries", r"^\s*proxy_next_upstream_tries\s+(\d+);"),
        ("proxy-request-buffering", r"^\s*proxy_request_buffering\s+(\w+);"),
        ("proxy-connect-timeout", r"^\s*proxy_connect_timeout\s+(\d+)s;"),
    ],
)
def test_the_ingress_has_the_nginx_sites_limit(
    rendered: dict[Path, list[dict[str, Any]]], project: Path, annotation: str, site_pattern: str
) -> None:
    annotations = ingress(rendered)["metadata"]["annotations"]

    assert annotations[ANNOTATION + annotation] == site_directive(nginx_site(project), site_pattern)


def test_the_ingress_burst_is_the_sites(rendered: dict[Path, list[dict[str, Any]]], project: Path) -> None:
    # ingress-nginx's burst is the rate times a multiplier; the site writes the burst itself.
    annotations = ingress(rendered)["metadata"]["annotations"]
    burst = int(annotations[ANNOTATION + "limit-rps"]) * int(annotations[ANNOTATION + "limit-burst-multiplier"])

    assert burst == int(site_directive(nginx_site(project), r"^\s*limit_req\s.*burst=(\d+)"))


# --- checkov ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkov_reports(project: Path) -> dict[str, dict[str, Any]]:
    return checkov_of(project)


def checkov_of(project: Path) -> dict[str, dict[str, Any]]:
    """checkov's JSON report per framework, offline (--skip-download), kubectl on PATH for kustomize."""
    result = run(
        [tool("checkov"), "--skip-download", "--directory", str(KUBE_DIR), "--output", "json"],
        project,
        env=project_env(LOG_LEVEL="WARNING"),
        timeout=300,
    )
    assert result.returncode in {0, 1}, result.stderr  # 1 means failed checks, asserted below
    reports = json.loads(result.stdout)
    return {report["check_type"]: report for report in (reports if isinstance(reports, list) else [reports])}


@pytest.mark.scan
def test_checkov_scanned_files_and_kustomizations(checkov_reports: dict[str, dict[str, Any]]) -> None:
    assert set(checkov_reports) == {"kubernetes", "kustomize"}


@pytest.mark.scan
@pytest.mark.parametrize("framework", ["kubernetes", "kustomize"])
def test_checkov_parsed_everything(checkov_reports: dict[str, dict[str, Any]], framework: str) -> None:
    summary = checkov_reports[framework]["summary"]

    assert (summary["parsing_errors"], summary["passed"] > 0) == (0, True)


@pytest.mark.scan
@pytest.mark.parametrize("framework", ["kubernetes", "kustomize"])
def test_checkov_finds_no_failed_checks(checkov_reports: dict[str, dict[str, Any]], framework: str) -> None:
    failed = [
        f"{check['check_id']} {check['resource']}: {check['check_name']}"
        for check in checkov_reports[framework]["results"]["failed_checks"]
    ]

    assert failed == []


@pytest.mark.scan
@pytest.mark.parametrize("framework", ["kubernetes", "kustomize"])
def test_every_checkov_skip_gives_a_reason(checkov_reports: dict[str, dict[str, Any]], framework: str) -> None:
    skipped = checkov_reports[framework]["results"]["skipped_checks"]

    assert [
        check["check_id"]
        for check in skipped
        if not (check.get("check_result", {}).get("suppress_comment") or "").strip()
    ] == []


# --- metrics=yes: the metrics port, its scrape annotations and the ServiceMonitor component ----------

COMPONENT = KUBE_DIR / "components/servicemonitor"
MONITORED = KUBE_DIR / "overlays/monitored"  # a test overlay: production plus the component


@pytest.fixture(scope="module")
def metrics_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = bake_project(
        tmp_path_factory.mktemp("kubernetes-metrics"),
        python_version=HOST_PYTHON,
        packaging="docker",
        kubernetes="yes",
        metrics="yes",
    )
    overlay = project / MONITORED
    overlay.mkdir(parents=True)
    (overlay / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        "resources:\n  - ../production\ncomponents:\n  - ../../components/servicemonitor\n"
    )
    return project


@pytest.fixture(scope="module")
def metrics_rendered(metrics_project: Path) -> dict[Path, list[dict[str, Any]]]:
    return {folder: render(metrics_project, folder) for folder in (*KUSTOMIZATIONS, MONITORED)}


def metrics_port_setting(project: Path) -> int:
    package = json.loads((project / ".cruft.json").read_text())["context"]["cookiecutter"]["package_name"]
    values = dict(line.split("=", 1) for line in (project / ".env.example").read_text().splitlines() if "=" in line)
    return int(values[f"{package.upper()}_METRICS_PORT"])


def named(resources: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (resource,) = [item for item in resources if item["kind"] == kind and item["metadata"]["name"] == name]
    return resource


@pytest.mark.scan
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("folder", [*KUSTOMIZATIONS, MONITORED], ids=str)
def test_manifests_with_metrics_validate(
    metrics_rendered: dict[Path, list[dict[str, Any]]], folder: Path, version: str
) -> None:
    for document in metrics_rendered[folder]:
        if document["kind"] != "ServiceMonitor":  # the Prometheus Operator's own kind: no schema here
            kubernetes_validate.validate(document, version, strict=True)


@pytest.mark.parametrize("folder", KUSTOMIZATIONS, ids=str)
def test_the_container_port_named_metrics_is_the_metrics_port(
    metrics_project: Path, metrics_rendered: dict[Path, list[dict[str, Any]]], folder: Path
) -> None:
    ports = {port["name"]: port["containerPort"] for port in container(metrics_rendered[folder])["ports"]}

    assert ports["metrics"] == metrics_port_setting(metrics_project)


def test_the_pods_carry_the_scrape_annotations(
    metrics_project: Path, metrics_rendered: dict[Path, list[dict[str, Any]]]
) -> None:
    annotations = one_of_kind(metrics_rendered[OVERLAY], "Deployment")["spec"]["template"]["metadata"]["annotations"]

    assert annotations == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(metrics_port_setting(metrics_project)),
        "prometheus.io/path": "/metrics",
    }


def test_the_network_policy_admits_the_metrics_port(metrics_rendered: dict[Path, list[dict[str, Any]]]) -> None:
    rules = one_of_kind(metrics_rendered[OVERLAY], "NetworkPolicy")["spec"]["ingress"]

    assert {port["port"] for rule in rules for port in rule["ports"]} == {"http", "metrics"}


def test_the_public_service_does_not_expose_the_metrics(metrics_rendered: dict[Path, list[dict[str, Any]]]) -> None:
    ports = one_of_kind(metrics_rendered[OVERLAY], "Service")["spec"]["ports"]

    assert [port["targetPort"] for port in ports] == ["http"]


def test_the_service_monitor_scrapes_the_metrics_port_of_the_pods(
    metrics_project: Path, metrics_rendered: dict[Path, list[dict[str, Any]]]
) -> None:
    resources = metrics_rendered[MONITORED]
    slug = one_of_kind(resources, "Deployment")["metadata"]["name"]
    monitor = one_of_kind(resources, "ServiceMonitor")["spec"]
    service = named(resources, "Service", f"{slug}-metrics")
    pod_labels = one_of_kind(resources, "Deployment")["spec"]["template"]["metadata"]["labels"]
    selected = {"service": monitor["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()}
    selected["pods"] = service["spec"]["selector"].items() <= pod_labels.items()
    selected["port"] = [port["targetPort"] for port in service["spec"]["ports"]] == ["metrics"]
    selected["endpoint"] = [endpoint["port"] for endpoint in monitor["endpoints"]] == ["metrics"]

    assert selected == {"service": True, "pods": True, "port": True, "endpoint": True}


def test_only_the_metrics_service_is_selected_by_the_monitor(
    metrics_rendered: dict[Path, list[dict[str, Any]]],
) -> None:
    resources = metrics_rendered[MONITORED]
    wanted = one_of_kind(resources, "ServiceMonitor")["spec"]["selector"]["matchLabels"].items()
    services = [item for item in resources if item["kind"] == "Service"]

    assert [s["metadata"]["name"] for s in services if wanted <= s["metadata"]["labels"].items()] == [
        f"{one_of_kind(resources, 'Deployment')['metadata']['name']}-metrics"
    ]


@pytest.mark.scan
def test_checkov_finds_no_failed_checks_with_metrics(metrics_project: Path) -> None:
    reports = checkov_of(metrics_project)
    failed = [
        f"{check['check_id']} {check['resource']}: {check['check_name']}"
        for report in reports.values()
        for check in report["results"]["failed_checks"]
    ]

    assert (sorted(reports), failed) == (["kubernetes", "kustomize"], [])


@pytest.mark.scan
def test_checkov_finds_no_failed_checks_with_the_migrations_init_container(tmp_path: Path) -> None:
    baked = bake_project(
        tmp_path, python_version=HOST_PYTHON, packaging="docker", kubernetes="yes", database="postgres"
    )
    reports = checkov_of(baked)
    failed = [
        f"{framework} {check['check_id']} {check['resource']}: {check['check_name']}"
        for framework, report in reports.items()
        for check in report["results"]["failed_checks"]
    ]

    assert (sorted(reports), failed) == (["kubernetes", "kustomize"], [])
