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
import threading
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fupin.auth import auth_headers
from fupin.config import Settings, SettingsError
from fupin.heartbeat import assess, read_json


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
WORKER_MARK = "stream"
DASHBOARD_MARK = "dashboard"


def worker_files(settings: Settings) -> list[Path]:
    """The stream workers' own pid files (``streams.app.worker_file``), live or left by a dead one."""
    return sorted(Path(settings.data_dir).glob("stream-*.json"))


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


def http_json(url: str, timeout: float = 5.0, headers: dict[str, str] | None = None) -> Any:
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - loopback URL we recorded
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
                http_json(info["url"].rstrip("/") + "/health", timeout=2.0, headers=auth_headers(settings))
                return {"pid": proc.pid, "url": info["url"], "log": str(log_path)}
            except (OSError, ValueError) as exc:
                last_error = f"{info['url']}/health: {exc}"
        time.sleep(0.2)
    stop_process(proc.pid, WAREHOUSE_MARK, timeout=10.0)
    raise StackError(
        f"the warehouse service did not answer within {timeout:.0f}s ({last_error}); "
        f"{log_path} ends with:\n{log_tail(log_path)}"
    )


def dashboard_file(settings: Settings) -> Path:
    """The dashboard's own pid file (``warehouse.dashboard.server``)."""
    return Path(settings.data_dir) / "dashboard.json"


def live_dashboard(settings: Settings) -> dict[str, Any] | None:
    info = read_json(dashboard_file(settings))
    return info if info and process_matches(info.get("pid"), DASHBOARD_MARK) else None


def _start_recording(name: str, argv: list[str], env: dict[str, str], log_path: Path, record: Path,
                     mark: str, timeout: float) -> dict[str, Any]:  # fmt: skip
    """Start ``fupin <argv>`` detached and wait until it writes its record (``record``: a JSON
    file with its pid and URL); the record, else a StackError with the end of its log."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "fupin.cli", *argv], stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, start_new_session=True)  # fmt: skip
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StackError(f"{name} exited with code {proc.returncode}; {log_path} ends with:\n{log_tail(log_path)}")
        info = read_json(record) or {}
        if info.get("pid") == proc.pid and info.get("url"):
            return info
        time.sleep(0.2)
    stop_process(proc.pid, mark, timeout=10.0)
    raise StackError(f"{name} did not start within {timeout:.0f}s; {log_path} ends with:\n{log_tail(log_path)}")


def start_dashboard(settings: Settings, timeout: float = 60.0) -> dict[str, Any]:
    """Start `fupin dashboard` detached and wait until it records itself (its URL)."""
    log_path = log_dir(settings) / "dashboard.log"
    env = {**os.environ, "FUPIN_DATA_DIR": str(Path(settings.data_dir).resolve())}
    info = _start_recording("the dashboard", ["dashboard"], env, log_path, dashboard_file(settings),
                            DASHBOARD_MARK, timeout)  # fmt: skip
    return {"pid": info["pid"], "url": info["url"], "log": str(log_path)}


DOCS_MARK = "docs"


def live_docs(settings: Settings) -> dict[str, Any] | None:
    """The `fupin docs` process serving this data directory's documents, if one runs."""
    from fupin.docs_cli import docs_file

    info = read_json(docs_file(settings))
    return info if info and process_matches(info.get("pid"), DOCS_MARK) else None


def start_docs(settings: Settings, timeout: float = 60.0) -> dict[str, Any]:
    """Start `fupin docs` detached on a free loopback port (or find the one serving already) and
    wait until it records its URL; `fupin down` stops it with the stack."""
    from fupin.docs_cli import docs_file

    if running := live_docs(settings):
        return running
    log_path = log_dir(settings) / "docs.log"
    # the same sites as this process's: the dbt target lives under the database's name
    env = {**os.environ, "FUPIN_DATA_DIR": str(Path(settings.data_dir).resolve()),
           "FUPIN_CLICKHOUSE_DATABASE": settings.clickhouse_database}  # fmt: skip
    info = _start_recording("'fupin docs'", ["docs", "--port", "0"], env, log_path, docs_file(settings),
                            DOCS_MARK, timeout)  # fmt: skip
    return {**info, "log": str(log_path)}


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
            state["dashboard"] = start_dashboard(settings, timeout)
            write_state(settings, state)
        from producers.gateway.process import start_gateway

        state["gateway"] = start_gateway(settings, bootstrap_servers, logs / "gateway.log", timeout)
        write_state(settings, state)
    except BaseException:
        if (state.get("dashboard") or {}).get("pid"):
            stop_process(state["dashboard"]["pid"], DASHBOARD_MARK, timeout=10.0)
        if (state.get("warehouse") or {}).get("pid"):
            stop_process(state["warehouse"]["pid"], WAREHOUSE_MARK, timeout=10.0)
        stop_process(proc.pid, BROKER_MARK, timeout=10.0)
        stack_file(settings).unlink(missing_ok=True)
        raise
    return state


def stop_processes(targets: list[tuple[str, int, str]], timeout: float) -> list[str]:
    """SIGTERM every (label, pid, mark) at once, SIGKILL what still runs after timeout; says what."""
    outcomes: dict[int, str] = {}
    threads = [
        threading.Thread(target=lambda p=pid, m=mark: outcomes.__setitem__(p, stop_process(p, m, timeout)))
        for _, pid, mark in targets
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [f"{label} pid {pid}: {outcomes[pid]}" for label, pid, _ in targets]


def live_service_pid(settings: Settings) -> int | None:
    """The warehouse service that recorded itself in warehouse.json, if it still runs."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        pid = json.loads(service_file(settings).read_text()).get("pid")
        if process_matches(pid, WAREHOUSE_MARK):
            return pid
    return None


def stop_stack(settings: Settings, timeout: float = 10.0) -> list[str]:
    """Stop every process of the stack that can be found; says what.

    Stream workers first (they write into the broker), by their own pid files; then the
    warehouse service(s) (the one stack.json records and one restarted by hand, which records
    itself in warehouse.json; the sink flushes into the warehouse); the broker last.
    """
    state = read_raw_state(settings) or {}
    done: list[str] = []
    workers = []
    for path in worker_files(settings):
        info = read_json(path) or {}
        pid = info.get("pid")
        if process_matches(pid, WORKER_MARK):
            workers.append((f"stream worker {info.get('worker', path.stem)}", pid, WORKER_MARK))
        else:
            path.unlink(missing_ok=True)  # left by a worker that died
    done += stop_processes(workers, timeout)
    if dash := live_dashboard(settings):
        done += stop_processes([("dashboard", dash["pid"], DASHBOARD_MARK)], timeout)
    if docs := live_docs(settings):
        done += stop_processes([("docs", docs["pid"], DOCS_MARK)], timeout)
    from producers.gateway.process import stop_gateway

    done += stop_gateway(state, timeout)  # it publishes into the broker, as the workers do
    services = []
    recorded = (state.get("warehouse") or {}).get("pid")
    if recorded:
        services.append(("warehouse service", recorded, WAREHOUSE_MARK))
    by_hand = live_service_pid(settings)
    if by_hand and by_hand != recorded:
        services.append(("warehouse service (not started by 'fupin up')", by_hand, WAREHOUSE_MARK))
    done += stop_processes(services, timeout)
    info = read_json(service_file(settings)) or {}
    if not pid_alive(info.get("pid")):
        service_file(settings).unlink(missing_ok=True)
    for path in worker_files(settings):
        if not pid_alive((read_json(path) or {}).get("pid")):
            path.unlink(missing_ok=True)
    broker = state.get("broker") or {}
    if broker.get("pid"):
        outcome = stop_process(broker["pid"], BROKER_MARK, timeout)
        done.append(f"broker pid {broker['pid']} on {broker.get('bootstrap')}: {outcome}")
    stack_file(settings).unlink(missing_ok=True)
    return done


# -- healing -----------------------------------------------------------------------------------


def dead_workers(settings: Settings) -> list[dict[str, Any]]:
    """Pid files of stream workers whose process is gone (killed, not stopped: a clean stop removes it)."""
    dead = []
    for path in worker_files(settings):
        info = read_json(path)
        if info is not None and not process_matches(info.get("pid"), WORKER_MARK):
            dead.append({**info, "path": str(path)})
    return dead


def start_worker(settings: Settings, info: dict[str, Any], timeout: float = 60.0) -> dict[str, Any]:
    """Start a stream worker again as it was started (its recorded arguments), detached.

    Waits until it records itself (its pid file with its new pid); StackError if it exits first.
    """
    name = str(info.get("worker") or "1")
    argv = info.get("argv") or ["stream", "--worker", name]
    logs = log_dir(settings)
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"stream-{name}.log"
    env = dict(os.environ)
    env["FUPIN_DATA_DIR"] = str(Path(settings.data_dir).resolve())
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fupin.cli", *argv],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
    path = Path(info.get("path") or Path(settings.data_dir) / f"stream-{name}.json")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StackError(
                f"stream worker {name} exited with code {proc.returncode} at start; "
                f"{log_path} ends with:\n{log_tail(log_path)}"
            )
        if (read_json(path) or {}).get("pid") == proc.pid:
            return {"worker": name, "pid": proc.pid, "log": str(log_path)}
        time.sleep(0.2)
    return {"worker": name, "pid": proc.pid, "log": str(log_path), "note": "not recorded itself yet"}


def heal_stack(settings: Settings, warehouse: bool = True, timeout: float = 60.0) -> list[str]:
    """The broker runs: start what is missing or dead (topics, the warehouse service, the gateway when
    configured, stream workers).

    What runs is left alone: a warehouse service started by hand is adopted into stack.json.
    The caller holds :func:`stack_lock`. Returns what was done (empty: nothing was needed).
    """
    from fupin.broker import create_topics
    from fupin.topics import all_topics

    state = read_raw_state(settings)
    assert state is not None
    done: list[str] = []
    broker = state["broker"]
    try:
        created = create_topics(broker["bootstrap"], all_topics(settings), settings.topic_partitions)
    except Exception as exc:  # kafka-python raises many kinds; all mean the same here
        raise StackError(f"could not create the topics on {broker['bootstrap']}: {exc}") from exc
    if created:
        done.append(f"topics: {len(created)} missing, created")
    if warehouse:
        recorded = state.get("warehouse") or {}
        live = live_service_pid(settings)
        if process_matches(recorded.get("pid"), WAREHOUSE_MARK):
            pass  # runs (perhaps still starting): left alone
        elif live:
            info = read_json(service_file(settings)) or {}
            state["warehouse"] = {"pid": live, "url": info.get("url"), "log": recorded.get("log")}
            write_state(settings, state)
            done.append(f"warehouse service: pid {live} at {info.get('url')} runs (adopted)")
        elif not live:
            was = f" (pid {recorded['pid']} was gone)" if recorded.get("pid") else ""
            state["warehouse"] = start_warehouse(
                settings, broker["bootstrap"], log_dir(settings) / "warehouse.log", timeout
            )
            write_state(settings, state)
            wh = state["warehouse"]
            done.append(f"warehouse service: pid {wh['pid']} at {wh['url']} started{was}")
        if not live_dashboard(settings):
            state["dashboard"] = start_dashboard(settings, timeout)
            write_state(settings, state)
            done.append(f"dashboard: pid {state['dashboard']['pid']} at {state['dashboard']['url']} started")
    from producers.gateway.process import MARK as GATEWAY_MARK
    from producers.gateway.process import start_gateway

    gateway = state.get("gateway") or {}
    if settings.gateway_port is not None and not process_matches(gateway.get("pid"), GATEWAY_MARK):
        state["gateway"] = start_gateway(settings, broker["bootstrap"], log_dir(settings) / "gateway.log", timeout)
        write_state(settings, state)
        was = f" (pid {gateway['pid']} was gone)" if gateway.get("pid") else ""
        done.append(f"gateway: pid {state['gateway']['pid']} at {state['gateway']['url']} started{was}")
    for info in dead_workers(settings):
        started = start_worker(settings, info)
        done.append(
            f"stream worker {started['worker']}: pid {started['pid']} started (pid {info.get('pid')} was gone; "
            f"log {started['log']})"
        )
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
    live = live_service_pid(settings)
    if live and (not wh or live != wh.get("pid")):
        # Restarted by hand (not recorded in stack.json): the live one is the warehouse service.
        info = read_json(service_file(settings)) or {}
        wh = {"pid": live, "url": info.get("url"), "not_started_by_up": True}
    if wh:
        wh = dict(wh)
        wh["alive"] = process_matches(wh.get("pid"), WAREHOUSE_MARK)
        if wh["alive"]:
            try:
                wh["health"] = http_json(
                    wh["url"].rstrip("/") + "/health", timeout=10.0, headers=auth_headers(settings)
                )
            except (OSError, ValueError) as exc:
                wh["error"] = str(exc)
                problems.append(f"warehouse service at {wh['url']} does not answer: {exc}")
        else:
            problems.append(f"warehouse service pid {wh.get('pid')} is gone")
    report["warehouse"] = wh
    dash = read_json(dashboard_file(settings))
    report["dashboard_url"] = (
        dash.get("url") if dash and process_matches(dash.get("pid"), DASHBOARD_MARK) else None
    )
    report["components"] = components = [_broker_component(broker)]
    if wh:
        components += _service_components(settings, wh)
    if dash:
        alive = process_matches(dash.get("pid"), DASHBOARD_MARK)
        verdict = assess(dash.get("heartbeat"), alive, dash.get("updated_at"))
        components.append(_component("dashboard", dash.get("pid"), verdict, url=dash.get("url")))
    components += worker_components(settings)
    problems += [
        f"{c['component']}: {c['state']}" + (f" ({c['reason']})" if c["reason"] else "")
        for c in components
        # the broker's and a gone service's troubles are said above
        if c["stuck"]
        and c["component"] != "broker"
        and not (c["component"] == "warehouse service" and c["state"] == "dead")
    ]
    from producers.gateway.process import gateway_url

    report["gateway_url"] = gateway_url(settings)
    report["running"] = not problems
    if problems:
        report["problem"] = "; ".join(problems)
    return report


def _component(name: str, pid: int | None, verdict: tuple[str, str | None, bool], **detail: Any) -> dict:
    state, reason, stuck = verdict
    return {"component": name, "pid": pid, "state": state, "reason": reason, "stuck": stuck, **detail}


def _broker_component(broker: dict[str, Any]) -> dict[str, Any]:
    """The broker has no heartbeat of its own (tansu): alive is its process and its port."""
    if not broker.get("alive"):
        verdict = ("dead", "the process is gone", True)
    elif not broker.get("answers"):
        verdict = ("not responding", f"nothing answers on {broker.get('bootstrap')}", True)
    else:
        verdict = ("alive", None, False)
    return _component("broker", broker.get("pid"), verdict, bootstrap=broker.get("bootstrap"))


def _service_components(settings: Settings, wh: dict[str, Any]) -> list[dict[str, Any]]:
    """The warehouse service and its sink, from the service's pid file (its heartbeat)."""
    info = read_json(service_file(settings)) or {}
    if info.get("pid") != wh.get("pid"):
        info = {}  # the file of another (earlier) service
    service = _component(
        "warehouse service",
        wh.get("pid"),
        assess(info.get("heartbeat"), wh["alive"], info.get("updated_at")),
        url=wh.get("url"),
    )
    out = [service]
    sink = info.get("sink")
    if wh["alive"] and sink:
        rows = ((wh.get("health") or {}).get("rows")) or {}
        counts = sink.get("counts") or {}
        out.append(
            _component(
                "sink",
                wh.get("pid"),
                assess(sink, True, info.get("updated_at")),
                pending=sink.get("pending"),
                last_progress_at=sink.get("last_progress_at"),
                counts=counts,
                landed={
                    t: rows.get(t) for t in ("events", "household_status_history", "alerts", "dead_letters")
                },
            )
        )
    return out


def worker_components(settings: Settings) -> list[dict[str, Any]]:
    """Every stream worker that left a pid file: alive, lagging, paused (why), dead, …"""
    out = []
    for path in worker_files(settings):
        info = read_json(path)
        if info is None:
            continue
        hb = info.get("heartbeat") or {}
        out.append(
            _component(
                f"stream worker {info.get('worker', path.stem)}",
                info.get("pid"),
                assess(
                    info.get("heartbeat"),
                    process_matches(info.get("pid"), WORKER_MARK),
                    info.get("updated_at"),
                ),
                url=info.get("url"),
                pending=hb.get("pending"),
                last_progress_at=hb.get("last_progress_at"),
                counts=hb.get("counts") or {},
            )
        )
    return out


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
    report["components"] = components = worker_components(settings)
    problems += [
        f"{c['component']}: {c['state']}" + (f" ({c['reason']})" if c["reason"] else "")
        for c in components
        if c["stuck"]
    ]
    report["running"] = not problems
    if problems:
        report["problem"] = "; ".join(problems)
    return report
