"""The checkpoint report as text: what failed, where, and what was seen."""

from __future__ import annotations

from typing import Any

MAX_SHOWN = 5


def _values(values: list[Any]) -> str:
    values = list(dict.fromkeys(repr(v) if isinstance(v, str) else str(v) for v in values))
    shown = ", ".join(values[:MAX_SHOWN])
    return shown + (", …" if len(values) > MAX_SHOWN else "")


def describe(item: dict[str, Any]) -> list[str]:
    """Lines for one failed expectation."""
    head = f"{item['severity'].upper():8} {item['suite']} · {item['column'] or '-'} · {item['expectation']}"
    lines = [head]
    if item.get("rule"):
        lines.append(f"         rule: {item['rule']}")
    if item.get("error"):
        lines.append(f"         error: {item['error']}")
    if item.get("unexpected_count") is not None:
        total = item.get("element_count")
        share = f" of {total} rows" if total else ""
        lines.append(f"         failing: {item['unexpected_count']}{share}")
    if item.get("observed") is not None:
        lines.append(f"         observed: {item['observed']}")
    if item.get("sample"):
        lines.append(f"         values: {_values(item['sample'])}")
    if item.get("rows"):
        lines.append(f"         rows: {_values(item['rows'])}")
    return lines


def format_report(result: dict[str, Any]) -> str:
    critical, warnings = result["critical_failures"], result["warnings"]
    verdict = "PASSED" if result["success"] else "FAILED"
    lines = [f"Data quality: {verdict} ({len(critical)} critical, {len(warnings)} warning(s))", ""]
    suites = result.get("suites", {})
    width = max([len(name) for name in suites] + [len(s["suite"]) for s in result.get("skipped", [])] + [10])
    table = max([len(info["table"]) for info in suites.values()] + [10])
    for suite, info in suites.items():
        lines.append(
            f"  {suite:{width}}  {info['table']:{table}}  {info['evaluated']:3} expectations, {info['failed']} failed"
        )
    for skipped in result.get("skipped", []):
        lines.append(f"  {skipped['suite']:{width}}  skipped: {skipped['reason']}")
    for item in [*critical, *warnings]:
        lines.append("")
        lines.extend(describe(item))
    if result.get("data_docs"):
        lines += ["", f"Data Docs: {result['data_docs']}"]
    return "\n".join(lines)
