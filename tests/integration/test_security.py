"""Security of the running warehouse service over HTTP: every door needs a token of the right role,
and the read-only query API refuses every bypass with nothing changed on disk (issue 12)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from fupin.config import load_settings
from fupin.stack import service_url

BYPASSES = [
    # comments and several statements in one text
    "SELECT 1 -- '\n; CREATE TABLE fupin.x (a Int8) ENGINE = Memory; SELECT '1'",
    "SELECT 1; DROP TABLE events",
    "SELECT 1 /* ; */; DROP TABLE events",
    "/* SELECT */ DROP TABLE events",
    # writes, DDL and administration
    "DROP TABLE events",
    "TRUNCATE TABLE events",
    "CREATE TABLE x (a Int8) ENGINE = MergeTree ORDER BY a",
    "CREATE TEMPORARY TABLE t (a Int8)",
    "INSERT INTO events (event_id) VALUES ('x')",
    "DELETE FROM events WHERE 1",
    "ALTER TABLE events DELETE WHERE 1",
    "RENAME TABLE events TO events2",
    "EXCHANGE TABLES events AND alerts",
    "OPTIMIZE TABLE events FINAL",
    "SYSTEM STOP MERGES",
    "KILL QUERY WHERE 1",
    "ATTACH TABLE y (a Int8) ENGINE = Memory",
    "DETACH TABLE events",
    "CREATE USER intruder",
    "GRANT ALL ON *.* TO default",
    "BACKUP TABLE events TO File('backup.zip')",
    "USE system",
    # settings
    "SET readonly = 0",
    "SELECT 1 SETTINGS readonly = 0",
    "SELECT 1 SETTINGS max_result_rows = 0",
    # table functions and functions that reach outside
    "SELECT * FROM file('/etc/hostname', 'LineAsString')",
    "SELECT file('/etc/hostname')",
    "SELECT * FROM url('http://127.0.0.1:9/', 'LineAsString')",
    "SELECT * FROM s3('http://127.0.0.1:9/bucket/key.csv', 'CSV')",
    "SELECT * FROM remote('127.0.0.1', system.one)",
    "SELECT * FROM executable('ls', 'TSV', 'a String')",
    "SELECT * FROM mysql('127.0.0.1:9', 'db', 't', 'u', 'p')",
    "SELECT * FROM postgresql('127.0.0.1:9', 'db', 't', 'u', 'p')",
    "SELECT * FROM hdfs('hdfs://127.0.0.1:9/x', 'CSV')",
    "SELECT * FROM merge('system', '.*')",
    "SELECT * FROM Python(settings)",
    "SELECT * FROM numbers(10)",
    "SELECT hasColumnInTable('system', 'tables', 'name')",
    # output
    "SELECT 1 INTO OUTFILE '{outfile}'",
    "SELECT 1 FORMAT JSON",
    # other databases
    "SELECT name FROM system.tables",
    "SELECT count() FROM events AS e, system.parts AS p",
    "SELECT (SELECT count() FROM system.tables) AS n",
    "SELECT 1 WHERE 1 IN (SELECT 1 FROM system.databases)",
    "SHOW TABLES FROM system",
    "SHOW DATABASES",
    "DESCRIBE TABLE system.users",
    "SELECT * FROM information_schema.tables",
    "SELECT * FROM other.secret",
    "SELECT * FROM events WHERE event_id IN (SELECT v FROM other.secret)",
    "SELECT 1 IN other.secret",
    # values quoted by an error of the analysis (it folds constant scalar subqueries)
    "SELECT CAST((SELECT any(v) FROM other.secret) AS Enum8('a' = 1))",
    "SELECT JSONExtract('{}', (SELECT any(v) FROM system.one, other.secret))",
    # dictionaries
    "SELECT dictGet('fupin.secret_dict', 'v', toUInt64(1))",
    "SELECT dictGet('other.secret_dict', 'v', toUInt64(1))",
    "SELECT * FROM dictionary('fupin.secret_dict')",
]

#: Before the service starts: another database, and a dictionary in the platform's database (the
#: dictionary's table is no mart, so no role but the operator may read it, and no role dictGet).
SETUP = """
import chdb, sys
c = chdb.connect(sys.argv[1])
for db in ("fupin", "other"):
    c.query(f"CREATE DATABASE IF NOT EXISTS {db}")
    c.query(f"CREATE TABLE {db}.secret (k UInt64, v String) ENGINE = MergeTree ORDER BY k")
    c.query(f"INSERT INTO {db}.secret VALUES (1, 'topsecret-value')")
    c.query(f"CREATE DICTIONARY {db}.secret_dict (k UInt64, v String) PRIMARY KEY k "
            f"SOURCE(CLICKHOUSE(DB '{db}' TABLE 'secret')) LAYOUT(FLAT()) LIFETIME(0)")
c.close()
"""


def _request(url: str, token: str | None, body: dict | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers=headers, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _disk(*roots: Path) -> dict[str, str]:
    """Every file under the roots with the SHA-256 of its content."""
    out = {}
    for root in roots:
        for p in sorted(root.rglob("*")):
            if p.is_file():
                out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _settled(*roots: Path, quiet: float = 3.0, timeout: float = 60.0) -> dict[str, str]:
    """The disk once background work (merges after the start's inserts) has stopped changing it."""
    last, since, deadline = _disk(*roots), time.monotonic(), time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = _disk(*roots)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
    return last


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """`fupin warehouse serve --no-sink` in its own process, own data dir and chdb path."""
    tmp = tmp_path_factory.mktemp("security")
    env = {**os.environ, "FUPIN_DATA_DIR": str(tmp / "data"), "FUPIN_CHDB_PATH": str(tmp / "chdb"),
           "FUPIN_CLICKHOUSE_DATABASE": "fupin"}  # fmt: skip
    env.pop("FUPIN_TOKEN", None)
    subprocess.run([sys.executable, "-c", SETUP, str(tmp / "chdb")], check=True, timeout=120)
    log = open(tmp / "service.log", "wb")  # noqa: SIM115 - the child's log
    proc = subprocess.Popen([sys.executable, "-m", "fupin.cli", "warehouse", "serve", "--no-sink"], env=env,
                            stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    svc = load_settings(env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not service_url(svc):
        assert proc.poll() is None, (tmp / "service.log").read_text()
        time.sleep(0.2)
    assert service_url(svc), (tmp / "service.log").read_text()

    def token(role: str) -> str:
        out = subprocess.run([sys.executable, "-m", "fupin.cli", "token", "create", "--role", role], env=env,
                             capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
        return out.stdout.strip()

    tokens = {r: token(r) for r in ("operator", "analyst", "dashboard", "department:civil_affairs")}
    yield svc, env, tmp, service_url(svc), tokens
    proc.terminate()
    proc.wait(60)
    log.close()


def test_bypasses_are_refused_and_nothing_changes_on_disk(service):
    svc, _, tmp, url, tokens = service
    outfile = tmp / "out.txt"
    roots = (Path(svc.data_dir), Path(svc.chdb_data_path))
    # A legitimate query first, so that whatever the engine writes on a first query is done.
    assert _request(f"{url}/query", tokens["operator"], {"sql": "SELECT count() FROM events"})[0] == 200
    before = _settled(*roots)
    tables = {p.name for p in (Path(svc.chdb_data_path) / "metadata" / "fupin").glob("*.sql")}
    assert {"events.sql", "dead_letters.sql"} <= tables
    answers = {}
    for sql in BYPASSES:
        status, doc = _request(f"{url}/query", tokens["operator"], {"sql": sql.replace("{outfile}", str(outfile))})
        answers[sql] = status
        assert status in (400, 403), f"{sql!r} answered {status}: {doc}"
        assert "rows" not in doc and "topsecret" not in doc["error"]
    for body in ({"sql": "SELECT count() FROM tables", "_database": "system"},
                 {"sql": "SELECT 1", "_database": "default"}):  # fmt: skip
        status, doc = _request(f"{url}/query", tokens["operator"], body)
        assert status == 403, (body, status, doc)
    assert len(answers) >= 20
    # The legitimate query still answers, parameters included.
    status, doc = _request(f"{url}/query", tokens["operator"],
                           {"sql": "SELECT {x:String} AS x, count() AS n FROM events", "params": {"x": "a;b"}})  # fmt: skip
    assert status == 200 and doc["rows"] == [["a;b", 0]], doc
    time.sleep(1.0)
    after = _disk(*roots)
    assert not outfile.exists()
    assert {p.name for p in (Path(svc.chdb_data_path) / "metadata" / "fupin").glob("*.sql")} == tables
    assert after == before, f"changed on disk: {sorted(set(after.items()) ^ set(before.items()))[:5]}"


def test_every_endpoint_needs_a_token_of_the_right_role(service):
    svc, env, _, url, tokens = service
    for path, body in (("/health", None), ("/query", {"sql": "SELECT 1"}), ("/jobs/migrate", {}),
                       ("/jobs/build", {}), ("/nowhere", {})):  # fmt: skip
        assert _request(url + path, None, body)[0] == 401, path
        assert _request(url + path, "fpn_not-a-token", body)[0] == 401, path
    for role, token in tokens.items():
        assert _request(f"{url}/health", token)[0] == 200, role
        status, _ = _request(f"{url}/jobs/migrate", token, {})
        assert status == (200 if role == "operator" else 403), role
    # Reading: dashboard the marts only, analyst marts and staging, departments nothing.
    q = {"sql": "SELECT count() FROM dead_letters"}
    assert _request(f"{url}/query", tokens["operator"], q)[0] == 200
    for role in ("analyst", "dashboard"):
        status, doc = _request(f"{url}/query", tokens[role], q)
        assert status == 403 and f"role {role} may not read" in doc["error"]
    assert _request(f"{url}/query", tokens["department:civil_affairs"], {"sql": "SELECT 1"})[0] == 403
    # Not even through an error message of the analysis: the tables are checked before it.
    leak = {"sql": "SELECT CAST((SELECT any(v) FROM secret) AS Enum8('a' = 1))"}
    status, doc = _request(f"{url}/query", tokens["dashboard"], leak)
    assert status == 403 and "topsecret" not in doc["error"], doc
    status, doc = _request(f"{url}/query", tokens["operator"], leak)  # the operator may read it
    assert status == 422 and "topsecret" in doc["error"], doc
    assert _request(f"{url}/query", tokens["dashboard"], {"sql": "SELECT 1"})[0] == 200
    # The CLI needs no token typed: it sends the local operator credential the service issued.
    cli = subprocess.run([sys.executable, "-m", "fupin.cli", "warehouse", "query", "SELECT count() FROM events",
                          "--format", "tsv"], env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    assert cli.stdout.splitlines()[1] == "0"
    local = Path(svc.data_dir) / "operator.token"
    assert local.stat().st_mode & 0o777 == 0o600
    assert (Path(svc.data_dir) / "tokens.json").stat().st_mode & 0o777 == 0o600
    assert local.read_text().strip() not in (Path(svc.data_dir) / "tokens.json").read_text()  # hashed
    # Revoking a token closes its door at once; listing never shows a secret.
    listed = subprocess.run([sys.executable, "-m", "fupin.cli", "token", "list"], env=env, capture_output=True,
                            text=True, timeout=60, check=True).stdout  # fmt: skip
    assert "analyst" in listed and not any(t in listed for t in tokens.values())
    subprocess.run([sys.executable, "-m", "fupin.cli", "token", "revoke", "analyst"], env=env, check=True,
                   capture_output=True, timeout=60)  # fmt: skip
    assert _request(f"{url}/health", tokens["analyst"])[0] == 401


def test_publish_check_of_department_roles():
    from fupin.auth import may_publish

    assert may_publish("department:civil_affairs", "civil_affairs.dibao_granted")
    assert not may_publish("department:civil_affairs", "education.enrolled")
    assert not may_publish("department:civil_affairsx", "civil_affairsx.a")
    assert not may_publish("operator", "civil_affairs.dibao_granted")
