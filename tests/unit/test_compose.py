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
USERS_XML = PROJECT_ROOT / "docker" / "clickhouse" / "users.d" / "fupin-users.xml"
CONFIG_XML = PROJECT_ROOT / "docker" / "clickhouse" / "config.d" / "fupin.xml"
MODELS = PROJECT_ROOT / "dbt_project" / "models"
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
    assert mounted("clickhouse")["/etc/clickhouse-server/users.d/fupin-users.xml"].startswith("./docker/")


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


def test_no_secret_has_a_default_compose_refuses_to_start_without_them(services):
    doc = SERVER_DOC.read_text()
    seen = set()
    for name, service in services.items():
        for key, value in _env(service).items():
            if not SECRET_NAME.search(key):
                continue
            ref = VAR_REF.match(value)
            assert ref, f"{name}.{key} holds a literal secret; use ${{VAR:?message}}"
            assert ref["default"] is None and ":?" in value, f"{name}.{key} falls back to a default"
            assert ref["var"] in doc, f"{name}.{key}: variable {ref['var']} is not documented"
            seen.add(ref["var"])
    assert {"CLICKHOUSE_PASSWORD", "CLICKHOUSE_READER_PASSWORD", "CLICKHOUSE_ANALYST_PASSWORD",
            "CLICKHOUSE_DASHBOARDS_PASSWORD", "FUPIN_PSEUDONYM_KEY"} <= seen  # fmt: skip
    text = COMPOSE.read_text()
    assert "dev-only-pseudonym-key" not in text and "-dev}" not in text


def test_published_ports_bind_loopback_only(services):
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond this machine"


def _models(layer: str) -> set[str]:
    return {p.stem for p in (MODELS / layer).glob("*.sql")}


def _grants(user) -> set[str]:
    out = set()
    for q in user.findall("grants/query"):
        text = q.text.strip()
        assert text.startswith("GRANT SELECT ON fupin."), text  # SELECT only, the platform's database only
        out.add(text.removeprefix("GRANT SELECT ON fupin."))
    return out


@pytest.mark.parametrize("name", ["fupin_reader", "analyst", "dashboards"])
def test_reader_users_are_read_only_pinned_and_local(name, services):
    root = ET.parse(USERS_XML).getroot()
    user = root.find(f"users/{name}")
    assert user is not None
    password = user.find("password")
    assert password is not None and password.get("from_env") and not (password.text or "").strip()
    assert password.get("from_env") in _env(services["clickhouse"]), "the password must reach the server"
    profile = root.find(f"profiles/{user.findtext('profile')}")
    assert profile is not None, "the user's profile must be defined with it"
    # readonly = 2 (BI drivers set their session's settings), and the constraints pin the rest.
    assert profile.findtext("readonly") == "2"
    constraints = profile.find("constraints")
    for setting in ("readonly", "allow_ddl", "allow_introspection_functions", "result_overflow_mode"):
        assert constraints.find(f"{setting}/const") is not None, f"{setting} must be const"
    for limit in ("max_execution_time", "max_rows_to_read", "max_result_rows", "max_result_bytes", "max_memory_usage"):
        assert int(constraints.findtext(f"{limit}/max")) == int(profile.findtext(limit)), limit
    assert user.findtext("access_management") == "0"
    ips = [ip.text for ip in user.findall("networks/ip")]
    assert ips and "::/0" not in ips and "0.0.0.0/0" not in ips
    assert all(ip in ("127.0.0.1", "::1") or ip.startswith("172.28.") for ip in ips)


def test_grants_follow_the_roles():
    root = ET.parse(USERS_XML).getroot()
    marts, staging = _models("marts"), _models("staging")
    assert _grants(root.find("users/dashboards")) == marts  # no event payloads, no dead letters
    assert _grants(root.find("users/analyst")) == marts | staging | {"events_latest", "alerts"}
    assert _grants(root.find("users/fupin_reader")) == {"*"}
    config = ET.parse(CONFIG_XML).getroot()
    assert config.findtext("access_control_improvements/select_from_system_db_requires_grant") == "true"
    assert config.findtext("access_control_improvements/select_from_information_schema_requires_grant") == "true"


def test_clickhouse_network_is_the_fixed_subnet(compose):
    subnets = [c["subnet"] for c in compose["networks"]["default"]["ipam"]["config"]]
    assert subnets == ["172.28.0.0/16"]
