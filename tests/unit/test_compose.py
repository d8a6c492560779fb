"""Server mode on paper: the compose file, the Dockerfile and the ClickHouse users are checked here
by structure, since no Docker engine runs on the machines the tests run on."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest
import yaml

from fupin import PROJECT_ROOT

COMPOSE = PROJECT_ROOT / "docker-compose.yml"
DOCKERFILE = PROJECT_ROOT / "Dockerfile"
DASHBOARDS_XML = PROJECT_ROOT / "docker" / "clickhouse" / "users.d" / "dashboards.xml"
SERVER_DOC = PROJECT_ROOT / "docs" / "server-mode.md"

#: A variable reference with a default (`${VAR:-default}`) or required (`${VAR:?msg}`, `${VAR}`).
VAR_REF = re.compile(r"^\$\{(?P<var>[A-Z0-9_]+)(?::-(?P<default>[^}]*)|:\?[^}]*)?\}$")
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY$|CREDENTIAL", re.IGNORECASE)
#: A version tag: digits and dots first (3.9.1, 24.8.14.39), never `latest`.
VERSION_TAG = re.compile(r"^\d+(\.\d+)+([-.][\w.]+)?$")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def _env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def test_required_services(services):
    assert {"kafka", "clickhouse", "topics", "migrate", "stream", "sink", "build"} <= set(services)


def test_every_image_is_pinned_to_a_version(services):
    for name, service in services.items():
        image = service.get("image")
        assert image, f"service {name} names no image (built services tag theirs too)"
        repo, _, tag = image.rpartition(":")
        assert repo and "/" not in tag, f"service {name}: image {image} has no tag"
        assert tag != "latest" and VERSION_TAG.match(tag), (
            f"service {name}: {image} is not pinned to a version"
        )


def test_dockerfile_base_pinned_non_root_and_fupin_entrypoint():
    text = DOCKERFILE.read_text()
    base = re.search(r"^FROM\s+(\S+)", text, re.MULTILINE).group(1)
    name, _, tag = base.partition(":")
    assert name == "python" and tag.startswith("3.11.") and VERSION_TAG.match(tag.split("-")[0])
    users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert users and users[-1] not in ("root", "0"), "the image must not run as root"
    assert re.search(r'^ENTRYPOINT\s+\["fupin"\]', text, re.MULTILINE)
    ignored = (PROJECT_ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", ".fupin"} <= set(ignored)


def test_platform_services_are_built_run_in_server_mode_and_wait_for_health(services):
    for name in ("topics", "migrate", "stream", "sink", "build"):
        service = services[name]
        assert service["build"]["dockerfile"] == "Dockerfile"
        env = _env(service)
        assert env["FUPIN_MODE"] == "server"
        assert env["FUPIN_BROKER_BOOTSTRAP"] == "kafka:9092"
        assert env["FUPIN_CLICKHOUSE_HOST"] == "clickhouse"
        for dep, cond in service["depends_on"].items():
            assert dep in services
            if dep in ("kafka", "clickhouse"):
                assert cond["condition"] == "service_healthy", f"{name} must wait for {dep} to be healthy"
    assert services["migrate"]["command"] == ["warehouse", "migrate"]
    assert services["stream"]["command"] == ["stream"]
    assert services["sink"]["command"] == ["sink"]
    assert services["build"]["command"] == ["build"]
    assert "build" in services["build"]["profiles"]
    assert services["sink"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_healthchecks_on_kafka_and_clickhouse(services):
    for name in ("kafka", "clickhouse"):
        check = services[name]["healthcheck"]
        assert check["test"] and check.get("interval") and check.get("retries")
    assert "kafka-broker-api-versions" in " ".join(services["kafka"]["healthcheck"]["test"])
    assert "/ping" in " ".join(services["clickhouse"]["healthcheck"]["test"])


def test_named_volumes_for_state(compose, services):
    declared = set(compose["volumes"])

    def mounted(service: str) -> dict[str, str]:
        return {v.split(":")[1]: v.split(":")[0] for v in services[service]["volumes"]}

    assert mounted("kafka")["/var/lib/kafka/data"] in declared
    assert mounted("clickhouse")["/var/lib/clickhouse"] in declared
    assert mounted("stream")["/data"] in declared
    assert mounted("clickhouse")["/etc/clickhouse-server/users.d/dashboards.xml"].startswith("./docker/")


def test_kafka_runs_kraft_single_node(services):
    env = _env(services["kafka"])
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    node = env["KAFKA_NODE_ID"]
    voters = env["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(",")
    assert voters == [f"{node}@kafka:9093"]
    assert "CONTROLLER://:9093" in env["KAFKA_LISTENERS"]
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] == "CONTROLLER"
    assert env["CLUSTER_ID"]
    assert not any(k.startswith("KAFKA_ZOOKEEPER") for k in env)
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def test_no_secret_in_clear_beyond_documented_defaults(services):
    doc = SERVER_DOC.read_text()
    seen = 0
    for name, service in services.items():
        for key, value in _env(service).items():
            if not SECRET_NAME.search(key):
                continue
            seen += 1
            ref = VAR_REF.match(value)
            assert ref, f"{name}.{key} holds a literal secret; use ${{VAR:-dev default}}"
            assert ref["var"] in doc, f"{name}.{key}: variable {ref['var']} is not documented"
            if ref["default"]:
                assert ref["default"] in doc, f"{name}.{key}: default of {ref['var']} is not documented"
    assert seen >= 3  # the ClickHouse, dashboards and pseudonym secrets were all looked at
    assert "development default" in doc.lower()


def test_published_ports_bind_loopback_only(services):
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond this machine"


def test_dashboards_user_is_read_only():
    root = ET.parse(DASHBOARDS_XML).getroot()
    user = root.find("users/dashboards")
    assert user is not None
    password = user.find("password")
    assert password is not None and password.get("from_env") and not (password.text or "").strip()
    profile = root.find(f"profiles/{user.findtext('profile')}")
    assert profile is not None, "the dashboards user's profile must be defined with it"
    assert profile.findtext("readonly") == "1"
    grants = [q.text.strip().upper() for q in user.findall("grants/query")]
    assert grants and all(g.startswith("GRANT SELECT ON ") for g in grants)
    assert user.findtext("access_management") == "0"
