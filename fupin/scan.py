"""``fupin privacy scan``: look for raw identifiers everywhere the platform keeps data.

Reads every topic of the platform from the beginning (the embedded broker, or the server's),
every String column of every table of the warehouse database (as a warehouse job, in the
process that owns chdb), and every text file under the data directory (logs included). The
engines' own stores are not read as files: chdb's data is read through the warehouse, a stream
worker's RocksDB table through its changelog topic. Each value that matches a
raw-identifier pattern (:mod:`fupin.privacy`) is reported with where it was found and the kind,
never the value. The exit status is 1 when anything was found.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import click
import orjson

from fupin import packing, privacy
from fupin.cli import settings_from
from fupin.config import Settings

#: Bytes read to decide whether a file is text (a NUL byte among them: binary, not scanned).
SNIFF = 8192
#: Columns that say which row a warehouse finding is in, best first.
LOCATORS = (
    ("alert_id",),
    ("event_id",),
    ("source_topic", "source_partition", "source_offset"),
    ("household_id",),
)


@dataclass(frozen=True, slots=True)
class Finding:
    place: str  # topic, warehouse or file
    where: str
    kind: str

    def text(self) -> str:
        return f"{self.place}: {self.where}: {self.kind.replace('_', ' ')}"


def findings_in(value: bytes | str | None) -> Iterator[tuple[str, str]]:
    """(where inside the value, kind) of each raw identifier; JSON is followed to the string's path."""
    if value is None:
        return
    raw = value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")
    raw = packing.unpack(raw)  # a stored household state: what it holds, not its compressed bytes
    if not privacy.may_hold_identifier(raw):
        return
    doc: Any = None
    if raw[:1] in (b"{", b"["):
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            doc = None
    if isinstance(doc, dict | list):
        yield from privacy.strings_with_identifiers(doc)
        return
    text = raw.decode("utf-8", "replace")
    for span in privacy.find(text):
        yield f"characters {span.start}-{span.end}", span.kind


# -- topics ------------------------------------------------------------------------------------


def platform_topic(settings: Settings, topic: str) -> bool:
    """The platform's topics (``<prefix>.…``) and its stream workers' internal ones (``<prefix>-…``)."""
    p = settings.topic_prefix
    return topic.startswith((p + ".", p + "-"))


def scan_topics(settings: Settings, idle_polls: int = 3) -> tuple[list[Finding], int, list[str]]:
    """Findings, messages read, topics read: every platform topic from the beginning until idle.

    The embedded broker's end offsets are wrong (DEVELOPERS.md), so reading ends after
    ``idle_polls`` empty polls rather than at a reported end.
    """
    from kafka import KafkaConsumer, TopicPartition

    from fupin.stack import bootstrap

    consumer = KafkaConsumer(bootstrap_servers=bootstrap(settings), group_id=None, enable_auto_commit=False,
                             auto_offset_reset="earliest", consumer_timeout_ms=1000)  # fmt: skip
    found: list[Finding] = []
    count = 0
    try:
        names = sorted(t for t in consumer.topics() if platform_topic(settings, t))
        parts = [TopicPartition(t, p) for t in names for p in sorted(consumer.partitions_for_topic(t) or ())]
        if not parts:
            return found, 0, names
        consumer.assign(parts)
        consumer.seek_to_beginning(*parts)
        empty = 0
        while empty < idle_polls:
            batch = consumer.poll(timeout_ms=1000, max_records=10_000)
            if not batch:
                empty += 1
                continue
            empty = 0
            for records in batch.values():
                for r in records:
                    count += 1
                    at = f"{r.topic} partition {r.partition} offset {r.offset}"
                    for what, data in (("key", r.key), ("value", r.value)):
                        found.extend(Finding("topic", f"{at} {what} {w}", k) for w, k in findings_in(data))
                    for name, data in r.headers or ():
                        found.extend(
                            Finding("topic", f"{at} header {name} {w}", k) for w, k in findings_in(data)
                        )
    finally:
        consumer.close()
    return found, count, names


# -- the warehouse (a job: it runs where chdb is owned) ---------------------------------------


def warehouse_scan_job(warehouse: Any, settings: Settings, **params: Any) -> dict[str, Any]:
    """Every String-typed column of every table of the database, filtered in SQL, checked here."""
    from warehouse.client import string_param

    db = warehouse.database
    # Set and Join tables cannot be read (the event-id Set of the validity check holds ids only);
    # a materialized view's rows are its target table's, read there.
    tables = warehouse.query(
        # views and materialized views hold no data of their own (an MV's target is scanned); a Set
        # or Join table cannot be read (event_ids: hashes of event ids)
        "SELECT name FROM system.tables WHERE database = {db:String} "
        "AND engine NOT IN ('View', 'Dictionary', 'MaterializedView', 'Set', 'Join') "
        "AND NOT is_temporary ORDER BY name",
        {"db": db},
    )
    columns = warehouse.query(
        "SELECT table, name, type FROM system.columns WHERE database = {db:String} ORDER BY table, position",
        {"db": db},
    )
    by_table: dict[str, list[tuple[str, str]]] = {}
    for table, name, typ in columns:
        by_table.setdefault(table, []).append((name, typ))
    findings: list[dict[str, str]] = []
    scanned = 0
    for (table,) in tables:
        cols = by_table.get(table, [])
        names = {c for c, _ in cols}
        locator = next((loc for loc in LOCATORS if set(loc) <= names), ())
        loc_sql = ", ".join(f"toString(`{c}`)" for c in locator) or "''"
        for column, typ in cols:
            if "String" not in typ:
                continue
            scanned += 1
            rows = warehouse.query(
                f"SELECT {loc_sql}, toString(`{column}`) AS v FROM `{db}`.`{table}` WHERE match(v, {{p:String}})",
                {"p": string_param(warehouse, privacy.MAYBE_PATTERN)},
            )
            for row in rows:
                at = ":".join(str(x) for x in row[:-1]) if locator else ""
                value = row[-1]
                for where, kind in findings_in(value if isinstance(value, bytes | str) else str(value)):
                    row_at = f" ({'/'.join(locator)} {at})" if locator else ""
                    findings.append(
                        asdict(Finding("warehouse", f"{db}.{table}.{column}{row_at} {where}", kind))
                    )
    return {"findings": findings, "tables": len(tables), "columns": scanned}


# -- files -------------------------------------------------------------------------------------


def is_store(path: Path, chdb: Path) -> bool:
    """A database engine's own directory: chdb's data path, or a RocksDB database (a stream
    worker's table, whose values are the changelog topic's, scanned there). Their files are the
    engine's binary data and its operational log (options, thread ids, compaction statistics)."""
    return path.resolve() == chdb or ((path / "CURRENT").is_file() and (path / "IDENTITY").is_file())


def scan_files(settings: Settings, exclude: tuple[str, ...] = ()) -> tuple[list[Finding], int, int, int, int]:
    """Findings, text files read, binary files skipped, files excluded, engine stores skipped:
    everything under the data dir."""
    root = Path(settings.data_dir).resolve()
    chdb = Path(settings.chdb_data_path).resolve()
    found: list[Finding] = []
    texts = binaries = excluded = stores = 0
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        kept = [d for d in dirnames if not is_store(here / d, chdb)]
        stores += len(dirnames) - len(kept)
        dirnames[:] = kept
        for name in filenames:
            path = here / name
            if any(
                fnmatch.fnmatch(str(path), pat) or fnmatch.fnmatch(str(path.resolve()), pat)
                for pat in exclude
            ):
                excluded += 1
                continue
            try:
                with path.open("rb") as fh:
                    head = fh.read(SNIFF)
                    if b"\0" in head:
                        binaries += 1
                        continue
                    texts += 1
                    fh.seek(0)
                    for lineno, line in enumerate(fh, start=1):
                        for where, kind in findings_in(line.rstrip(b"\r\n")):
                            found.append(Finding("file", f"{path.relative_to(root)}:{lineno} {where}", kind))
            except OSError as exc:
                found.append(
                    Finding("file", f"{path.relative_to(root)}: unreadable ({exc.strerror})", "unscanned")
                )
    return found, texts, binaries, excluded, stores


# -- the command -------------------------------------------------------------------------------


@click.group(name="privacy")
def privacy_cli() -> None:
    """Privacy checks of the platform's data."""


@privacy_cli.command()
@click.option("--exclude", multiple=True, metavar="GLOB",
              help="Files not to read (for example a department's own input files, which hold raw IDs).")  # fmt: skip
@click.option("--no-topics", is_flag=True, help="Do not read the topics.")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON.")
@click.pass_context
def scan(ctx: click.Context, exclude: tuple[str, ...], no_topics: bool, as_json: bool) -> None:
    """Report every raw identifier in the topics, the warehouse, the logs and the files (never the value)."""
    from warehouse.client import WarehouseError
    from warehouse.service import run_job

    settings = settings_from(ctx)
    findings: list[Finding] = []
    notes: list[str] = []
    if no_topics:
        notes.append("topics: not read (--no-topics)")
    else:
        try:
            got, messages, names = scan_topics(settings)
            findings += got
            notes.append(f"topics: {messages:,} messages of {len(names)} topics read")
        except Exception as exc:  # no broker runs (SettingsError), or it does not answer (Kafka errors)
            notes.append(f"topics: NOT read ({type(exc).__name__}: {exc})")
    try:
        result = run_job(settings, "privacy-scan")
        findings += [Finding(**f) for f in result["findings"]]
        notes.append(f"warehouse: {result['columns']} text columns of {result['tables']} tables read")
    except WarehouseError as exc:
        notes.append(f"warehouse: NOT read ({exc})")
    got, texts, binaries, excluded, stores = scan_files(settings, exclude)
    findings += got
    notes.append(
        f"files: {texts:,} text files read, {binaries:,} binary skipped, {excluded:,} excluded, "
        f"{stores:,} engine stores (chdb, RocksDB) read through the warehouse and the topics instead"
    )
    if as_json:
        click.echo(orjson.dumps({"findings": [asdict(f) for f in findings], "notes": notes}).decode())
    else:
        for f in findings:
            click.echo(f.text())
        for note in notes:
            click.echo(note)
        click.echo(f"privacy scan: {len(findings)} finding(s)")
    unread = any("NOT read" in n for n in notes)
    if findings:
        ctx.exit(1)
    if unread:
        ctx.exit(2)
