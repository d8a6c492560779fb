"""One settings object for every component, from environment variables and an optional fupin.toml.

Precedence: environment (``FUPIN_<NAME>``) over the TOML file (``FUPIN_CONFIG`` or ./fupin.toml)
over defaults. A wrong or missing setting fails at start with a message that names it.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from fupin import PROJECT_ROOT

MODES = ("embedded", "server")


class SettingsError(ValueError):
    """A setting is missing or invalid; the message names the setting."""


@dataclass(frozen=True)
class Settings:
    mode: str = "embedded"
    #: Where the embedded stack keeps its state: broker/service pid files, chdb data, reference data.
    data_dir: Path = Path(".fupin")
    #: Kafka bootstrap servers. Required in server mode; in embedded mode taken from the running stack.
    broker_bootstrap: str | None = None
    #: Port of the embedded broker; 0 picks a free one.
    broker_port: int = 0
    topic_prefix: str = "fupin"
    topic_partitions: int = 4
    # ClickHouse server (server mode)
    clickhouse_host: str = "localhost"
    clickhouse_port: int = 9000
    clickhouse_user: str = "default"
    clickhouse_password: str = ""
    clickhouse_database: str = "fupin"
    #: Read-only ClickHouse user for every read path in server mode (profile readonly=2, pinned limits).
    clickhouse_reader_user: str | None = None
    clickhouse_reader_password: str | None = None
    #: chdb data path (embedded mode); default <data_dir>/chdb.
    chdb_path: Path | None = None
    #: Port of the embedded warehouse service's local API; 0 picks a free one.
    service_port: int = 0
    #: Directory with regions.csv, population.csv, lines.csv; default <data_dir>/reference if present,
    #: else the shipped defaults.
    reference_dir: Path | None = None
    #: HMAC key for person pseudonyms; producers refuse to start without it.
    pseudonym_key: str | None = None
    #: Alert thresholds (domain.md, configurable).
    medical_burden_share: float = 0.5
    medical_burden_amount: float = 20000.0
    #: Dead-letter share above which the data-quality checkpoint fails.
    deadletter_max_share: float = 0.05
    #: HTTP gateway (producers/gateway): `fupin up` starts it when gateway_port is set (0 = any free port).
    gateway_port: int | None = None
    #: Address it listens on; loopback unless departments reach it from other machines.
    gateway_host: str = "127.0.0.1"
    #: Largest request: events and bytes (past either: HTTP 413).
    gateway_max_events: int = 10_000
    gateway_max_bytes: int = 16 * 1024 * 1024
    #: Events sent but not yet acknowledged by the broker beyond which a request gets 429.
    gateway_max_pending: int = 100_000
    #: Seconds a request waits for the broker's acknowledgements before 429 (resend later).
    gateway_ack_timeout: float = 10.0
    #: Accepted (household_id, event_id)s remembered for duplicates, per broker life.
    gateway_index_size: int = 1_000_000
    #: Processes that judge large requests beside the event loop (0: all in the loop).
    gateway_workers: int = 1
    #: Port of the dashboard (warehouse/dashboard); 0 picks a free one.
    dashboard_port: int = 0
    #: The dashboard's public view suppresses every cell counting fewer households than this.
    public_min_households: int = 5
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    # -- derived paths -------------------------------------------------------------------------
    @property
    def chdb_data_path(self) -> Path:
        return Path(self.chdb_path) if self.chdb_path else self.data_dir / "chdb"

    @property
    def reference_path(self) -> Path:
        if self.reference_dir:
            return Path(self.reference_dir)
        local = self.data_dir / "reference"
        if (local / "lines.csv").exists():
            return local
        return PROJECT_ROOT / "producers" / "reference" / "defaults"

    def require(self, name: str) -> Any:
        """Value of a setting that must be set for the caller's job."""
        value = getattr(self, name)
        if value in (None, ""):
            raise SettingsError(
                f"setting '{name}' is required here: set FUPIN_{name.upper()} or '{name}' in fupin.toml"
            )
        return value

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)


def _coerce(name: str, typ: Any, raw: Any) -> Any:
    tname = typ if isinstance(typ, str) else getattr(typ, "__name__", str(typ))
    try:
        if raw is None:
            return None
        if "Path" in tname:
            return Path(os.path.expanduser(str(raw)))
        if "int" in tname:
            return int(raw)
        if "float" in tname:
            return float(raw)
        return str(raw)
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"setting '{name}' has an invalid value {raw!r}: expected {tname}") from exc


def load_settings(
    env: dict[str, str] | None = None, config_file: Path | None = None, **overrides: Any
) -> Settings:
    """Build the settings from environment, TOML file and explicit overrides, and check them."""
    env = dict(os.environ if env is None else env)
    path = config_file or (Path(env["FUPIN_CONFIG"]) if env.get("FUPIN_CONFIG") else Path("fupin.toml"))
    file_values: dict[str, Any] = {}
    if (config_file is not None or env.get("FUPIN_CONFIG")) and not path.exists():
        raise SettingsError(f"setting 'FUPIN_CONFIG': file {path} does not exist")
    if path.exists():
        with path.open("rb") as fh:
            data = tomllib.load(fh)
        file_values = {**data.pop("fupin", {}), **{k: v for k, v in data.items() if not isinstance(v, dict)}}
    known = {f.name: f for f in fields(Settings) if f.name != "extra"}
    unknown = sorted(set(file_values) - set(known))
    if unknown:
        raise SettingsError(f"unknown setting(s) in {path}: {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for name, f in known.items():
        raw = overrides.get(name, env.get(f"FUPIN_{name.upper()}", file_values.get(name)))
        if raw is not None:
            values[name] = _coerce(name, f.type, raw)
    settings = Settings(**values)
    _check(settings)
    return settings


def _check(s: Settings) -> None:
    if s.mode not in MODES:
        raise SettingsError(f"setting 'mode' must be one of {', '.join(MODES)}, not {s.mode!r}")
    if s.topic_partitions < 1:
        raise SettingsError("setting 'topic_partitions' must be at least 1")
    if not (0 <= s.broker_port < 65536):
        raise SettingsError("setting 'broker_port' must be a port number (0 = any free port)")
    if not (0 <= s.service_port < 65536):
        raise SettingsError("setting 'service_port' must be a port number (0 = any free port)")
    if s.gateway_port is not None and not (0 <= s.gateway_port < 65536):
        raise SettingsError("setting 'gateway_port' must be a port number (0 = any free port)")
    # A dead letter from the gateway names the event's index in its request as its partition (Int32).
    if not (1 <= s.gateway_max_events <= 2**31 - 1):
        raise SettingsError("setting 'gateway_max_events' must be between 1 and 2147483647")
    for name in ("gateway_max_bytes", "gateway_max_pending", "gateway_index_size"):
        if getattr(s, name) < 1:
            raise SettingsError(f"setting '{name}' must be at least 1")
    if s.gateway_workers < 0:
        raise SettingsError("setting 'gateway_workers' must be 0 or more")
    if s.gateway_ack_timeout <= 0:
        raise SettingsError("setting 'gateway_ack_timeout' must be more than 0 seconds")
    if not (0 <= s.dashboard_port < 65536):
        raise SettingsError("setting 'dashboard_port' must be a port number (0 = any free port)")
    if s.public_min_households < 1:
        raise SettingsError("setting 'public_min_households' must be at least 1")
    if s.mode == "server":
        s.require("broker_bootstrap")
        s.require("clickhouse_host")
    if not s.topic_prefix.replace("_", "").replace("-", "").isalnum():
        raise SettingsError("setting 'topic_prefix' may hold letters, digits, '_' and '-' only")
