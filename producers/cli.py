"""Producer commands: ``fupin publish``, ``fupin simulate``, ``fupin reference load``."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import click

from fupin.cli import settings_from
from fupin.config import SettingsError
from fupin.topics import DEPARTMENTS


def _count_lines(path: Path) -> int | None:
    if path.suffix.lower() not in (".csv", ".jsonl", ".ndjson", ".txt"):
        return None
    n = 0
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 22):
            n += chunk.count(b"\n")
    return max(0, n - (1 if path.suffix.lower() in (".csv", ".txt") else 0))


def run_import(settings, department: str, path: Path, mapping: Path | None, use_ledger: bool, quiet: bool):
    """One file through the importer with a progress bar on stderr; returns the summary."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from producers.importers import import_file

    console = Console(stderr=True)
    total = _count_lines(path)
    if not quiet and not console.is_terminal:
        click.echo(f"publishing {department} {path}" + (f" ({total:,} rows)" if total else "") + " ...", err=True)
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=console, disable=quiet or not console.is_terminal, transient=True) as progress:
        task = progress.add_task(f"{department} {path.name}", total=total)
        return import_file(settings, department, path, mapping=mapping, use_ledger=use_ledger,
                           progress=lambda n: progress.advance(task, n))


def _summary_json(summary) -> dict:
    r = summary.report
    return {
        "file": str(summary.path), "mapping": summary.mapping, "rows": summary.rows, "accepted": r.accepted,
        "accepted_distinct": len(set(r.accepted_ids)) if r.accepted_ids else r.accepted,
        "rejected": len(r.rejected), "duplicates_skipped": r.duplicates_skipped, "failed": len(r.failed),
        "rejects_file": str(summary.rejects_path) if summary.rejects_path else None,
    }


def department_of(path: Path) -> str | None:
    """The department of a file when it tells: its envelopes' (JSONL of envelopes) or its folder's name."""
    from producers.importers import is_envelope_file, read_jsonl

    if is_envelope_file(path):
        for _, obj, _, _ in read_jsonl(path):
            if obj is None:
                continue
            dep = obj.get("department") or str(obj.get("event_type", "")).partition(".")[0]
            return dep if dep in DEPARTMENTS else None
    return path.parent.name if path.parent.name in DEPARTMENTS else None


def files_to_publish(department: str | None, files: tuple[Path, ...], manifest: Path | None) -> list[tuple[str, Path]]:
    """(department, file) pairs: from a simulator manifest, or each file with its department."""
    pairs: list[tuple[str, Path]] = []
    if manifest is not None:
        doc = json.loads(manifest.read_text(encoding="utf-8"))
        pairs += [(e["department"], manifest.parent / e["file"]) for e in doc["files"]]
    for path in files:
        dep = department or department_of(path)
        if dep is None:
            raise click.UsageError(
                f"{path}: cannot tell its department (not a JSONL of envelopes, not in a folder named after "
                "one): pass --department"
            )
        pairs.append((dep, path))
    if not pairs:
        raise click.UsageError("nothing to publish: pass --file FILE (repeatable) or --manifest manifest.json")
    return pairs


def check_rejects(rows: int, rejected: int, allowed: float) -> None:
    """Exit non-zero when more than the allowed share of rows was rejected (none by default)."""
    if rejected and rejected > allowed * rows:
        share = rejected / rows if rows else 1.0
        raise click.ClickException(
            f"{rejected:,} of {rows:,} rows ({share:.1%}) were rejected; fix them from the .rejects.csv "
            f"file(s) and publish again, or accept a share with --allow-rejects {max(share, 0.001):.3f}"
        )


@click.command()
@click.option("--department", "-d", type=click.Choice(DEPARTMENTS),
              help="The publishing department; default: from a JSONL file's envelopes or the file's folder name.")
@click.option("--file", "-f", "files", multiple=True, type=click.Path(path_type=Path),
              help="CSV, JSONL or XLSX export (repeatable). A JSONL of contract envelopes needs no mapping.")
@click.option("--manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A simulator manifest.json: publish every department file it lists.")
@click.option("--mapping", "-m", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Column-mapping YAML; default: the shipped mapping of the department matching the file name.")
@click.option("--allow-rejects", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Share of rejected rows accepted before the command exits non-zero.")
@click.option("--no-ledger", is_flag=True, help="Resend events already delivered (their ids stay the same).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON line per file.")
@click.pass_context
def publish(ctx: click.Context, department: str | None, files: tuple[Path, ...], manifest: Path | None,
            mapping: Path | None, allow_rejects: float, no_ledger: bool, as_json: bool) -> None:
    """Publish department export files to their topics: rows that fail go to <file>.rejects.csv.

    Exits 1 when a row was rejected (beyond --allow-rejects) or an event failed delivery."""
    from producers.importers import FileFormatError
    from producers.importers.mapping import MappingError

    settings = settings_from(ctx)
    pairs = files_to_publish(department, files, manifest)
    failed = rows = rejected = 0
    for dep, path in pairs:
        try:
            summary = run_import(settings, dep, path, mapping, not no_ledger, as_json)
        except (MappingError, FileFormatError, FileNotFoundError, SettingsError) as exc:
            raise click.ClickException(str(exc)) from exc
        failed += len(summary.report.failed)
        rows += summary.rows
        rejected += len(summary.report.rejected)
        if as_json:
            click.echo(json.dumps({"department": dep, **_summary_json(summary)}, ensure_ascii=False))
        else:
            click.echo(f"{dep}: {summary.text()}")
    if len(pairs) > 1 and not as_json:
        click.echo(f"published {len(pairs)} files: {rows:,} rows, {rejected:,} rejected, {failed:,} failed")
    if failed:
        raise click.ClickException(f"{failed} event(s) failed delivery after retries; re-run to retry them")
    check_rejects(rows, rejected, allow_rejects)


@click.command()
@click.option("--households", default=60000, show_default=True, help="Rural households in the county.")
@click.option("--from", "year_from", default=2016, show_default=True, type=int)
@click.option("--to", "year_to", default=2021, show_default=True, type=int)
@click.option("--seed", default=2016, show_default=True, type=int)
@click.option("--bad-share", default=0.0, show_default=True, type=float,
              help="Share of bad input per file, split evenly: malformed, unknown type, duplicate, late.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Output directory (default <data_dir>/simulated).")
@click.option("--publish", "do_publish", is_flag=True, help="Also publish every file through the SDK.")
@click.option("--allow-rejects", type=click.FloatRange(0, 1), default=None,
              help="With --publish: share of rejected rows accepted (default: --bad-share).")
@click.pass_context
def simulate(ctx: click.Context, households: int, year_from: int, year_to: int, seed: int, bad_share: float,
             out: Path | None, do_publish: bool, allow_rejects: float | None) -> None:
    """Write a synthetic county's department files, reference data and truth (same seed, same bytes)."""
    from fupin.progress import stages
    from producers.simulator import simulate as run

    settings = settings_from(ctx)
    out = out or Path(settings.data_dir) / "simulated"
    if do_publish:
        try:
            settings.require("pseudonym_key")
        except SettingsError as exc:
            raise click.ClickException(str(exc)) from exc
    try:
        with stages("simulate") as progress:
            result = run(out, households, year_from, year_to, seed, bad_share, progress=progress.stage,
                         advance=progress.advance)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"simulated {households:,} households ({result.registered:,} registered), {year_from}–{year_to}, "
               f"seed {seed}: {result.events:,} rows in {len(result.files)} files, {result.bad_rows:,} bad rows, "
               f"{result.seconds:.1f}s -> {out}")
    if not do_publish:
        return
    manifest = json.loads((out / "manifest.json").read_text())
    totals = {"rows": 0, "accepted": 0, "rejected": 0, "failed": 0}
    for entry in manifest["files"]:
        summary = run_import(settings, entry["department"], out / entry["file"], None, True, False)
        s = _summary_json(summary)
        for k in totals:
            totals[k] += s[k]
        click.echo(f"  {entry['file']}: {s['accepted']:,} accepted, {s['rejected']:,} rejected, {s['failed']} failed")
    click.echo(f"published: {totals['accepted']:,} accepted, {totals['rejected']:,} rejected, "
               f"{totals['failed']} failed")
    if totals["failed"]:
        raise click.ClickException("some events failed delivery; re-run 'fupin publish' on those files")
    check_rejects(totals["rows"], totals["rejected"], bad_share if allow_rejects is None else allow_rejects)


@click.group()
def reference() -> None:
    """Reference data: regions, population, poverty and monitoring lines."""


@reference.command("check")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
def reference_check(directory: Path) -> None:
    """Validate a directory of regions.csv, population.csv and lines.csv."""
    from producers.reference import validate_reference_dir

    errors = validate_reference_dir(directory)
    if errors:
        for e in errors:
            click.echo(e, err=True)
        raise click.ClickException(f"{len(errors)} problem(s) in {directory}")
    click.echo(f"{directory}: reference data is valid")


@reference.command("load")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.pass_context
def reference_load(ctx: click.Context, directory: Path) -> None:
    """Validate DIRECTORY's three CSV files, copy them into <data_dir>/reference, load the warehouse."""
    from producers.reference import copy_reference, validate_reference_dir

    settings = settings_from(ctx)
    errors = validate_reference_dir(directory)
    if errors:
        for e in errors:
            click.echo(e, err=True)
        raise click.ClickException(f"{len(errors)} problem(s) in {directory}; nothing loaded")
    target = Path(settings.data_dir) / "reference"
    if directory.resolve() != target.resolve():
        if target.exists():
            shutil.rmtree(target)
        copy_reference(directory, target)
    click.echo(f"reference data copied to {target}")
    try:
        from warehouse.service import run_job
    except ImportError as exc:
        raise click.ClickException(f"files copied, but the warehouse is not available ({exc})") from exc
    try:
        result = run_job(settings, "load-reference")
    except Exception as exc:  # the warehouse may be down or unreachable: say so, keep the copy
        raise click.ClickException(f"files copied, but loading the warehouse failed: {exc}") from exc
    click.echo(f"warehouse reference tables loaded: {json.dumps(result, ensure_ascii=False, default=str)}")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(publish())
