"""The embedded stack's state: what `fupin up` started, and how other commands find it.

`fupin up` records the broker and the warehouse service in ``<data_dir>/stack.json``; the
warehouse service records its own API address in ``<data_dir>/warehouse.json``. Commands
resolve the broker through :func:`bootstrap`, never by guessing ports.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fupin.config import Settings, SettingsError


def stack_file(settings: Settings) -> Path:
    return Path(settings.data_dir) / "stack.json"


def service_file(settings: Settings) -> Path:
    return Path(settings.data_dir) / "warehouse.json"


def pid_alive(pid: int | None) -> bool:
    """Whether the process runs; a zombie (exited, not yet reaped by a careless init) counts as dead."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    # Field 3, after the parenthesised command name (which may itself hold spaces or parentheses).
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def read_state(settings: Settings) -> dict[str, Any] | None:
    """The recorded stack if its broker process still runs, else None."""
    path = stack_file(settings)
    if not path.exists():
        return None
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return state if pid_alive(state.get("broker", {}).get("pid")) else None


def bootstrap(settings: Settings) -> str:
    """Kafka bootstrap servers: the setting when given (server mode), else the running embedded broker."""
    if settings.broker_bootstrap:
        return settings.broker_bootstrap
    state = read_state(settings)
    if state is None:
        raise SettingsError(
            "setting 'broker_bootstrap' is not set and no embedded stack runs "
            f"(no live {stack_file(settings)}): run 'fupin up' first"
        )
    return state["broker"]["bootstrap"]


def service_url(settings: Settings) -> str | None:
    """Base URL of the running embedded warehouse service, or None when none runs."""
    path = service_file(settings)
    if settings.mode != "embedded" or not path.exists():
        return None
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return info.get("url") if pid_alive(info.get("pid")) else None


# -- lifecycle ---------------------------------------------------------------------------------
# `fupin up`, `status` and `down` are separate processes; everything they share goes through
# stack.json, and every process `up` starts gets its own session so that it outlives the CLI and
# can be stopped as a group by its recorded pid.

BROKER_MARK = "tansu"
WAREHOUSE_MARK = "warehouse"


class StackError(RuntimeError):
    """`fupin up` could not bring the stack up; the message says why (with the log's tail)."""


def log_dir(settings: Settings) -> Path:
    return Path(settings.data_dir).resolve() / "logs"


def process_matches(pid: int | None, mark: str) -> bool:
    """Whether pid is alive and still the process we recorded (guards against pid reuse)."""
    if not pid_alive(pid):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return True  # no /proc: trust the pid
    return mark in cmdline


def read_raw_state(settings: Settings) -> dict[str, Any] | None:
    """stack.json as recorded, live or not (so `down` can clean up after a crashed broker)."""
    try:
        return json.loads(stack_file(settings).read_text())
    except (OSError, ValueError):
        return None


def write_state(settings: Settings, state: dict[str, Any]) -> None:
    path = stack_file(settings)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    tmp.replace(path)


@contextlib.contextmanager
def stack_lock(settings: Settings) -> Iterator[None]:
    """Serialise `up` and `down` on one data dir, so two concurrent `up`s cannot both start a broker."""
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    with open(Path(settings.data_dir) / "stack.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def stop_process(pid: int | None, mark: str, timeout: float = 30.0) -> str:
    """SIGTERM the process (its group when it leads one), SIGKILL after timeout; says what happened."""
    if not process_matches(pid, mark):
        return "not running"
    assert pid is not None

    def send(sig: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            try:
                leads_group = os.getpgid(pid) == pid
            except ProcessLookupError:
                return
            if leads_group:
                os.killpg(pid, sig)
            else:
                os.kill(pid, sig)

    def wait(seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)  # reap it when it is our own child
            if not pid_alive(pid):
                return True
            time.sleep(0.05)
        return not pid_alive(pid)

    send(signal.SIGTERM)
    if wait(timeout):
        return "stopped"
    send(signal.SIGKILL)
    wait(5.0)
    return "killed" if not pid_alive(pid) else "still running after SIGKILL"


def http_json(url: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback URL we recorded
        return json.loads(resp.read().decode())


def port_answers(bootstrap: str, timeout: float = 1.0) -> bool:
    """Whether any of the bootstrap servers accepts a TCP connection."""
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            socket.create_connection((host or "localhost", int(port)), timeout=timeout).close()
            return True
        except (OSError, ValueError):
            continue
    return False


def log_tail(path: Path | str | None, lines: int = 20) -> str:
    if not path:
        return ""
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def start_warehouse(
    settings: Settings, bootstrap_servers: str, log_path: Path, timeout: float
) -> dict[str, Any]:
    """Start `fupin warehouse serve` detached and wait until it records itself and answers /health."""
    env = dict(os.environ)
    env["FUPIN_BROKER_BOOTSTRAP"] = bootstrap_servers
    env["FUPIN_DATA_DIR"] = str(Path(settings.data_dir).resolve())
    env["FUPIN_MODE"] = "embedded"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fupin.cli", "warehouse", "serve"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    last_error = "no warehouse.json yet"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StackError(
                f"the warehouse service exited with code {proc.returncode} before it answered; "
                f"{log_path} ends with:\n{log_tail(log_path)}"
            )
        try:
            info = json.loads(service_file(settings).read_text())
        except (OSError, ValueError):
            info = None
        if info and info.get("pid") == proc.pid and info.get("url"):
            try:
                http_json(info["url"].rstrip("/") + "/health", timeout=2.0)
                return {"pid": proc.pid, "url": info["url"], "log": str(log_path)}
            except (OSError, ValueError) as exc:
                last_error = f"{info['url']}/health: {exc}"
        time.sleep(0.2)
    stop_process(proc.pid, WAREHOUSE_MARK, timeout=10.0)
    raise StackError(
        f"the warehouse service did not answer within {timeout:.0f}s ({last_error}); "
        f"{log_path} ends with:\n{log_tail(log_path)}"
    )


def start_stack(settings: Settings, warehouse: bool = True, timeout: float = 60.0) -> dict[str, Any]:
    """Start broker, topics and (optionally) the warehouse service; record them in stack.json.

    The caller holds :func:`stack_lock` and has checked that nothing runs. On any failure
    everything started here is stopped again and stack.json removed, so a failed `up` leaves
    nothing behind.
    """
    from fupin.broker import create_topics, free_port, start_broker
    from fupin.topics import all_topics

    data_dir = Path(settings.data_dir).resolve()
    logs = log_dir(settings)
    logs.mkdir(parents=True, exist_ok=True)
    if warehouse and service_url(settings):
        raise StackError(
            f"a warehouse service already runs (recorded in {service_file(settings)}) outside "
            "'fupin up': stop it first, it holds the warehouse data"
        )
    port = settings.broker_port or free_port()
    if settings.broker_port and port_answers(f"127.0.0.1:{port}", timeout=0.5):
        # Checked first: the readiness probe would take the other listener for our broker.
        raise StackError(
            f"setting 'broker_port': 127.0.0.1:{port} is already in use by another process "
            "(set FUPIN_BROKER_PORT=0 for any free port)"
        )
    broker_log = logs / "broker.log"
    try:
        proc = start_broker(port, broker_log)
    except (OSError, RuntimeError, TimeoutError) as exc:
        raise StackError(
            f"the broker did not start on 127.0.0.1:{port}: {exc}\n{log_tail(broker_log)}"
        ) from exc
    bootstrap_servers = f"127.0.0.1:{port}"
    topics = all_topics(settings)
    state: dict[str, Any] = {
        "mode": "embedded",
        "data_dir": str(data_dir),
        "broker": {"pid": proc.pid, "port": port, "bootstrap": bootstrap_servers, "log": str(broker_log)},
        "warehouse": None,
        "topics": sorted(topics),
        "partitions": settings.topic_partitions,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }
    try:
        write_state(settings, state)
        try:
            create_topics(bootstrap_servers, topics, settings.topic_partitions)
        except Exception as exc:  # kafka-python raises many kinds; all mean the same here
            raise StackError(f"could not create the topics on {bootstrap_servers}: {exc}") from exc
        if warehouse:
            state["warehouse"] = start_warehouse(settings, bootstrap_servers, logs / "warehouse.log", timeout)
            write_state(settings, state)
        from producers.gateway.process import start_gateway

        state["gateway"] = start_gateway(settings, bootstrap_servers, logs / "gateway.log", timeout)
        write_state(settings, state)
    except BaseException:
        if (state.get("warehouse") or {}).get("pid"):
            stop_process(state["warehouse"]["pid"], WAREHOUSE_MARK, timeout=10.0)
        stop_process(proc.pid, BROKER_MARK, timeout=10.0)
        stack_file(settings).unlink(missing_ok=True)
        raise
    return state


def stop_stack(settings: Settings, timeout: float = 30.0) -> list[str]:
    """Stop what stack.json records, warehouse first (it flushes into the broker's topics); says what."""
    state = read_raw_state(settings)
    if state is None:
        return []
    from producers.gateway.process import stop_gateway

    done: list[str] = stop_gateway(state, timeout)
    wh = state.get("warehouse") or {}
    if wh.get("pid"):
        outcome = stop_process(wh["pid"], WAREHOUSE_MARK, timeout)
        done.append(f"warehouse service pid {wh['pid']}: {outcome}")
        with contextlib.suppress(OSError, ValueError):
            info = json.loads(service_file(settings).read_text())
            if info.get("pid") == wh["pid"] and not pid_alive(wh["pid"]):
                service_file(settings).unlink()
    broker = state.get("broker") or {}
    if broker.get("pid"):
        outcome = stop_process(broker["pid"], BROKER_MARK, timeout)
        done.append(f"broker pid {broker['pid']} on {broker.get('bootstrap')}: {outcome}")
    stack_file(settings).unlink(missing_ok=True)
    return done


# -- status ------------------------------------------------------------------------------------


def describe_topics(bootstrap_servers: str) -> list[dict[str, Any]]:
    """Topic names with partition counts from the broker's metadata (never offsets: tansu's are wrong)."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(
        bootstrap_servers=bootstrap_servers,
        client_id="fupin-status",
        request_timeout_ms=10000,
        bootstrap_timeout_ms=10000,
    )
    try:
        described = admin.describe_topics()
    finally:
        admin.close()
    return sorted(
        (
            {"name": t["name"], "partitions": len(t.get("partitions") or [])}
            for t in described
            if not t.get("is_internal")
        ),
        key=lambda t: t["name"],
    )


def _topics_report(settings: Settings, bootstrap_servers: str) -> dict[str, Any]:
    from fupin.topics import all_topics

    try:
        topics = describe_topics(bootstrap_servers)
    except Exception as exc:  # any kafka-python failure means "cannot tell"
        return {
            "error": f"{type(exc).__name__}: {exc}",
            "topics": [],
            "missing": sorted(all_topics(settings)),
        }
    names = {t["name"] for t in topics}
    return {"topics": topics, "missing": sorted(set(all_topics(settings)) - names)}


def embedded_status(settings: Settings) -> dict[str, Any]:
    """What runs of the embedded stack, checked live rather than trusted from stack.json."""
    state = read_raw_state(settings)
    report: dict[str, Any] = {"mode": "embedded", "data_dir": str(Path(settings.data_dir).resolve())}
    if state is None:
        report.update(running=False, problem=f"no embedded stack runs (no {stack_file(settings)})")
        return report
    broker = dict(state.get("broker") or {})
    broker["alive"] = process_matches(broker.get("pid"), BROKER_MARK)
    broker["answers"] = broker["alive"] and port_answers(broker.get("bootstrap", ""))
    report["broker"] = broker
    report["started_at"] = state.get("started_at")
    report["partitions"] = state.get("partitions")
    problems: list[str] = []
    if not broker["answers"]:
        problems.append(
            f"broker pid {broker.get('pid')} " + ("does not answer" if broker["alive"] else "is gone")
        )
        report.update(topics=[], missing_topics=[])
    else:
        topics = _topics_report(settings, broker["bootstrap"])
        report.update(topics=topics["topics"], missing_topics=topics["missing"])
        if "error" in topics:
            problems.append(f"topics: {topics['error']}")
        elif topics["missing"]:
            problems.append(f"missing topics: {', '.join(topics['missing'])}")
    wh = state.get("warehouse")
    if wh:
        wh = dict(wh)
        wh["alive"] = process_matches(wh.get("pid"), WAREHOUSE_MARK)
        if wh["alive"]:
            try:
                wh["health"] = http_json(wh["url"].rstrip("/") + "/health", timeout=10.0)
            except (OSError, ValueError) as exc:
                wh["error"] = str(exc)
                problems.append(f"warehouse service at {wh['url']} does not answer: {exc}")
        else:
            problems.append(f"warehouse service pid {wh.get('pid')} is gone")
    report["warehouse"] = wh
    from producers.gateway.process import gateway_url

    report["gateway_url"] = gateway_url(settings)
    report["running"] = not problems
    if problems:
        report["problem"] = "; ".join(problems)
    return report


def server_status(settings: Settings) -> dict[str, Any]:
    """Server mode: can we reach the configured Kafka and ClickHouse server, and what do they hold."""
    report: dict[str, Any] = {"mode": "server"}
    problems: list[str] = []
    bootstrap_servers = settings.require("broker_bootstrap")
    kafka: dict[str, Any] = {"bootstrap": bootstrap_servers, "answers": port_answers(bootstrap_servers, 3.0)}
    report["broker"] = kafka
    if kafka["answers"]:
        topics = _topics_report(settings, bootstrap_servers)
        report.update(topics=topics["topics"], missing_topics=topics["missing"])
        if "error" in topics:
            problems.append(f"Kafka: {topics['error']}")
        elif topics["missing"]:
            problems.append(f"missing topics: {', '.join(topics['missing'])}")
    else:
        problems.append(f"Kafka does not answer on {bootstrap_servers}")
        report.update(topics=[], missing_topics=[])
    ch: dict[str, Any] = {
        "host": settings.clickhouse_host,
        "port": settings.clickhouse_port,
        "database": settings.clickhouse_database,
    }
    try:
        from clickhouse_driver import Client

        client = Client(
            host=settings.clickhouse_host,
            port=settings.clickhouse_port,
            user=settings.clickhouse_user,
            password=settings.clickhouse_password,
            connect_timeout=5,
            send_receive_timeout=10,
        )
        try:
            ch["version"] = client.execute("SELECT version()")[0][0]
            rows = client.execute(
                "SELECT name, total_rows FROM system.tables WHERE database = %(db)s ORDER BY name",
                {"db": settings.clickhouse_database},
            )
            ch["tables"] = {name: count for name, count in rows}
        finally:
            client.disconnect()
    except Exception as exc:  # connection refused, auth, timeouts: all mean "not reachable"
        ch["error"] = f"{type(exc).__name__}: {exc}"
        problems.append(f"ClickHouse at {settings.clickhouse_host}:{settings.clickhouse_port}: {ch['error']}")
    report["warehouse"] = ch
    report["running"] = not problems
    if problems:
        report["problem"] = "; ".join(problems)
    return report
