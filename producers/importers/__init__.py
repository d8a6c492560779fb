"""File import: a department's export file (CSV, JSONL, XLSX) to its topic, through the SDK.

Rows become events through a column mapping; a JSONL file of contract envelopes is taken as it
is. Each event's ``event_id`` is a UUID5 of the department, the mapping, the row's own record
number and the event's content (after pseudonymization, never the raw row), so a re-run of the
same file produces the same ids and counts once downstream. A per-broker ledger of delivered
ids lets a re-run skip them outright. Rows that fail go to ``<file>.rejects.csv`` beside the
input (line, reason, the row with every raw-identifier span, the personal columns and the raw-ID
columns replaced by ``[redacted]``: the department fixes the row in its own system); reasons
never echo a value. Rows whose delivery failed go to ``<file>.failed.csv`` (redacted alike) and
are retried next run. A file whose header lacks a column every row needs, or holds a column the
mapping does not classify, is refused before a row is read (:meth:`Mapping.check_header`).
"""

from __future__ import annotations

import csv
import hashlib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from fupin import privacy
from fupin.config import Settings
from producers.importers.mapping import Mapping, MappingError, RowError, _format_of, find_mapping
from producers.sdk import DeliveryReport, Publisher, Rejected

#: Namespace of deterministic event ids of imported rows.
IMPORT_NAMESPACE = uuid.UUID("6f1c1d2e-8c55-5b43-9b1e-3f0a6a1e7d21")
_NAMESPACE_BYTES = IMPORT_NAMESPACE.bytes
_PLACEHOLDER_ID = "00000000-0000-4000-8000-000000000000"


@dataclass
class ImportSummary:
    path: Path
    mapping: str  # mapping name, or "envelopes"
    rows: int = 0
    report: DeliveryReport = field(default_factory=DeliveryReport)
    rejects_path: Path | None = None
    failed_path: Path | None = None

    def text(self) -> str:
        r = self.report
        lines = [
            f"{self.path.name} ({self.mapping}): {self.rows} rows",
            f"  accepted            {r.accepted}",
            f"  rejected            {len(r.rejected)}" + (f"  -> {self.rejects_path}" if self.rejects_path else ""),
            f"  duplicates skipped  {r.duplicates_skipped}",
            f"  failed              {len(r.failed)}" + (f"  -> {self.failed_path}" if self.failed_path else ""),
        ]
        return "\n".join(lines)


# -- readers: (line number, row or None, the raw row for the rejects file, error) ----------------
#: The raw row is the list of cells (CSV, XLSX) or the line's bytes (JSONL); it is turned into
#: text only when the row is rejected.
Row = tuple[int, dict[str, Any] | None, Any, str | None]


def raw_text(raw: Any) -> str:
    if isinstance(raw, bytes | bytearray):
        return bytes(raw).decode("utf-8", "replace")
    if isinstance(raw, str):
        return raw
    return orjson.dumps([c if isinstance(c, int | float | str) or c is None else str(c) for c in raw]).decode()


def safe_text(raw: Any, row: dict[str, Any] | None, mapping: Mapping | None) -> str:
    """The row as the rejects file keeps it: personal and raw-ID columns and every raw-identifier span redacted."""
    if row is not None and mapping is not None:
        hidden = mapping.redacted_row(row)
        if isinstance(raw, list | tuple):
            raw = [*hidden.values(), *list(raw)[len(hidden) :]]
        else:
            raw = orjson.dumps(hidden, default=str)
    return privacy.redact(raw_text(raw))[0]


def _column_of(mapping: Mapping | None, event_type: str | None, field: str | None) -> str | None:
    """The file's column behind an envelope path such as ``payload.reason`` (for a reason)."""
    if mapping is None or not field:
        return None
    head, _, rest = field.partition(".")
    if head == "payload" and event_type:
        spec = mapping.payload.get(event_type, {}).get(rest.split(".")[0].split("[")[0])
        return spec.column if spec is not None else None
    spec = mapping.envelope.get(head)
    return spec.column if spec is not None else None


class FileFormatError(ValueError):
    """A file that cannot be read (wrong encoding, not a workbook): the import stops with this error.

    Rows sent before the error keep their deterministic ids, so a re-run after the fix counts
    them once."""


def read_csv(path: Path, encoding: str = "utf-8-sig") -> Iterator[Row]:
    with path.open(newline="", encoding=encoding) as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if not header:
            return
        header = [h.strip() for h in header]
        n = len(header)
        for cells in reader:
            line = reader.line_num
            if len(cells) != n:
                if not any(c.strip() for c in cells):
                    continue
                yield line, None, cells, f"row has {len(cells)} cells, the header has {n}"
                continue
            yield line, dict(zip(header, cells, strict=True)), cells, None


def read_jsonl(path: Path, encoding: str = "utf-8") -> Iterator[Row]:
    with path.open("rb") as fh:
        for line, data in enumerate(fh, start=1):
            text = data.strip()
            if not text:
                continue
            try:
                obj = orjson.loads(text)
            except orjson.JSONDecodeError:
                yield line, None, text, "not valid JSON"
                continue
            if not isinstance(obj, dict):
                yield line, None, text, "not a JSON object"
                continue
            yield line, obj, text, None


def read_xlsx(path: Path, encoding: str = "") -> Iterator[Row]:
    from openpyxl import load_workbook

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises several types for a file that is not a workbook
        raise FileFormatError(f"{path.name}: not a readable .xlsx workbook ({type(exc).__name__})") from None
    try:
        ws = wb.worksheets[0]
        rows = ws.iter_rows(values_only=True)
        header = next(rows, None)
        if not header:
            return
        header = [str(h).strip() if h is not None else "" for h in header]
        for line, cells in enumerate(rows, start=2):
            if cells is None or all(c is None or str(c).strip() == "" for c in cells):
                continue
            cells = list(cells) + [None] * (len(header) - len(cells))
            yield line, dict(zip(header, cells[: len(header)], strict=True)), cells, None
    finally:
        wb.close()


READERS: dict[str, Callable[..., Iterator[Row]]] = {"csv": read_csv, "jsonl": read_jsonl, "xlsx": read_xlsx}


def is_envelope_file(path: Path) -> bool:
    """A JSONL file whose first object carries the envelope's fields: taken as it is."""
    if _format_of(path) != "jsonl":
        return False
    for _, obj, _, _ in read_jsonl(path):
        return isinstance(obj, dict) and {"event_type", "payload", "household_id"} <= set(obj)
    return False


# -- the ledger of delivered event ids ------------------------------------------------------------
class Ledger:
    """Event ids delivered to one topic of one broker incarnation: a re-run skips them."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.ids: set[str] = set()
        if path.exists():
            self.ids = set(path.read_text().split())

    def __contains__(self, event_id: str) -> bool:
        return event_id in self.ids

    def add(self, ids: list[str]) -> None:
        if not ids:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as fh:
            fh.write("\n".join(ids) + "\n")
        self.ids.update(ids)


def broker_incarnation(settings: Settings) -> str:
    """Which broker life this is: its address, and the embedded broker's pid (a restart loses all)."""
    from fupin.stack import bootstrap, read_state

    incarnation = bootstrap(settings)
    state = read_state(settings)
    # Also when the address is given (the processes `fupin up` starts get it): the same port may
    # serve a new, empty broker after a restart.
    if state and state.get("broker", {}).get("bootstrap") == incarnation:
        incarnation += f"#{state['broker'].get('pid')}"
    return incarnation


def ledger_for(settings: Settings, topic: str) -> Ledger:
    """The ledger of this topic on this broker: a restarted (memory-only) broker starts a new one."""
    digest = hashlib.sha256(f"{broker_incarnation(settings)}|{topic}".encode()).hexdigest()[:16]
    return Ledger(Path(settings.data_dir) / "producers" / "ledger" / f"{topic}.{digest}.ids")


# -- import ------------------------------------------------------------------------------------
def event_id_for(department: str, mapping: str, identity: str | None, envelope: dict[str, Any]) -> str:
    """Deterministic id: UUID5 of department, mapping, the row's record number, the event's content.

    The content is the pseudonymized envelope without ``event_id`` and ``recorded_at`` (a re-run
    stamps a new recording time when the file has none), never the raw row.
    """
    content = orjson.dumps([envelope["event_type"], envelope["household_id"], envelope["person_id"],
                            envelope["region_code"], envelope["occurred_at"], envelope["payload"]],
                           option=orjson.OPT_SORT_KEYS)
    name = f"{department}\x1f{mapping}\x1f{identity or ''}\x1f".encode() + content
    h = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name, usedforsecurity=False).digest()[:16])
    h[6] = (h[6] & 0x0F) | 0x50
    h[8] = (h[8] & 0x3F) | 0x80
    x = h.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"


def import_file(
    settings: Settings,
    department: str,
    path: Path | str,
    *,
    mapping: Mapping | Path | str | None = None,
    publisher: Publisher | None = None,
    use_ledger: bool = True,
    progress: Callable[[int], None] | None = None,
) -> ImportSummary:
    """Publish one file; returns the summary. Raises MappingError/FileNotFoundError on setup errors."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    envelopes = mapping is None and is_envelope_file(path)
    if not envelopes and not isinstance(mapping, Mapping):
        mapping = Mapping.load(mapping) if mapping is not None else find_mapping(department, path)
    if isinstance(mapping, Mapping):
        if mapping.department != department:
            raise MappingError(f"mapping {mapping.name} is for {mapping.department}, not {department}")
        fmt = mapping.format
        if fmt != _format_of(path):
            raise MappingError(f"mapping {mapping.name} reads {fmt} files; {path.name} is not one")
    else:
        fmt = "jsonl"
    encoding = mapping.encoding if isinstance(mapping, Mapping) else "utf-8"
    if isinstance(mapping, Mapping) and fmt != "jsonl":  # the header first: a wrong file sends nothing
        header = read_header(fmt, path, encoding)
        if header is not None:
            mapping.check_header(header, path.name)
    own = publisher is None
    pub = publisher or Publisher(settings, department, mapping.source_system if isinstance(mapping, Mapping) else None)
    summary = ImportSummary(path, "envelopes" if envelopes else mapping.name)
    ledger = ledger_for(settings, pub.topic) if use_ledger else None
    pub.track_ids = ledger is not None
    rejected_lines: list[tuple[int, str, str]] = []
    rules = mapping if isinstance(mapping, Mapping) else None
    try:
        for line, row, raw, error in _read(fmt, path, encoding):
            summary.rows += 1
            if progress is not None and summary.rows % 1000 == 0:
                progress(1000)
            if error is not None:
                rejected_lines.append((line, error, safe_text(raw, None, rules)))
                continue
            fields: dict[str, Any] = {}
            try:
                if envelopes:
                    env = row
                    pub.check(env)
                else:
                    if fmt == "jsonl" and (unknown := rules.unclassified(row)):
                        raise RowError(f"key(s) {', '.join(u[:40] for u in unknown[:5])} not classified by the mapping")
                    identity, fields = mapping.convert(row)
                    env = pub.build(**fields, event_id=_PLACEHOLDER_ID)
                    # A name, phone or address of the row typed into a published field (a name is
                    # no pattern: only the row's own personal columns tell it).
                    if leak := rules.personal_in(row, env["payload"]):
                        raise Rejected(f"field {leak[0]} holds the value of the personal column {leak[1]}",
                                       field=leak[0])  # fmt: skip
                    env["event_id"] = event_id_for(department, mapping.name, identity, env)
            except (RowError, Rejected) as exc:
                reason = exc.reason
                column = _column_of(rules, fields.get("event_type"), getattr(exc, "field", None))
                if column:
                    reason = f"column {column}: {reason}"
                rejected_lines.append((line, reason, safe_text(raw, row, rules)))
                continue
            if ledger is not None and env["event_id"] in ledger:
                pub.skipped_duplicate()
                continue
            pub.send(env, line)
        if progress is not None:
            progress(summary.rows % 1000)
        report = pub.flush()
    finally:
        if own:
            pub.close()
    for line, reason, _ in rejected_lines:
        report.rejected.append((line, reason))
    report.rejected.sort(key=lambda x: x[0] if isinstance(x[0], int) else 0)
    if ledger is not None:
        ledger.add(report.accepted_ids)
    summary.report = report
    raw_of = {line: raw for line, _, raw in rejected_lines}
    summary.rejects_path = _write_side(path, ".rejects.csv", [(ln, why, raw_of.get(ln, "")) for ln, why in report.rejected])
    failed_raw: dict[int, str] = {}
    if report.failed:  # re-read for the few rows that failed instead of keeping every row in memory
        wanted = {ln for ln, _ in report.failed}
        failed_raw = {line: safe_text(raw, row, rules) for line, row, raw, _ in _read(fmt, path, encoding)
                      if line in wanted}  # fmt: skip
    summary.failed_path = _write_side(path, ".failed.csv",
                                      [(ln, why, failed_raw.get(ln, "")) for ln, why in report.failed])
    return summary


def read_header(fmt: str, path: Path, encoding: str) -> list[str] | None:
    """The header of a CSV or XLSX file, read alone (None for an empty file)."""
    if fmt == "csv":
        try:
            with path.open(newline="", encoding=encoding or "utf-8-sig") as fh:
                header = next(csv.reader(fh), None)
        except UnicodeDecodeError as exc:
            raise FileFormatError(
                f"{path.name}: not valid {encoding or 'UTF-8'} text at byte {exc.start}; "
                "set 'encoding' in the mapping (e.g. gbk)"
            ) from None
        return [h.strip() for h in header] if header else None
    from openpyxl import load_workbook

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises several types for a file that is not a workbook
        raise FileFormatError(f"{path.name}: not a readable .xlsx workbook ({type(exc).__name__})") from None
    try:
        first = next(wb.worksheets[0].iter_rows(values_only=True, max_row=1), None)
    finally:
        wb.close()
    return [str(h).strip() if h is not None else "" for h in first] if first else None


def _read(fmt: str, path: Path, encoding: str) -> Iterator[Row]:
    """The reader of ``fmt``; an undecodable file is a FileFormatError naming the encoding."""
    try:
        yield from READERS[fmt](path, encoding) if encoding else READERS[fmt](path)
    except UnicodeDecodeError as exc:
        raise FileFormatError(
            f"{path.name}: not valid {encoding or 'UTF-8'} text at byte {exc.start}; "
            "set 'encoding' in the mapping (e.g. gbk)"
        ) from None


def _write_side(path: Path, suffix: str, rows: list[tuple[Any, str, str]]) -> Path | None:
    side = path.with_name(path.name + suffix)
    if not rows:
        if side.exists():
            side.unlink()
        return None
    with side.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(("line", "reason", "row"))
        w.writerows(rows)
    return side
