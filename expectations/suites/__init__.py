"""Expectation suites as code: one module a suite family, each giving the datasets to validate.

A dataset is a SQL query against the warehouse (its result becomes a pandas DataFrame) plus the
expectations for it. Every expectation carries a severity: ``critical`` fails the checkpoint,
``warning`` is reported only. Checks that need SQL (payload amounts, joins to reference data)
are computed as extra columns of the query, named for the problem they expose and null when
the row is fine, so that a failure's sample shows the offending values themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # GX is slow to import: only the checkpoint run pays for it
    import great_expectations.expectations as gxe

CRITICAL = "critical"
WARNING = "warning"


@dataclass
class Dataset:
    #: Suite name, e.g. "event_store" or "marts.census".
    suite: str
    #: The warehouse table the data comes from (for the report).
    table: str
    sql: str
    expectations: list[gxe.Expectation] = field(default_factory=list)
    #: Columns that identify a failing row in the report (e.g. event_id).
    index_columns: list[str] = field(default_factory=list)


def expect(cls: type[gxe.Expectation], severity: str, rule: str, **kwargs: Any) -> gxe.Expectation:
    """An expectation with its severity and the rule it enforces (shown in Data Docs and the report)."""
    if severity not in (CRITICAL, WARNING):
        raise ValueError(f"severity must be {CRITICAL!r} or {WARNING!r}, not {severity!r}")
    return cls(
        severity=severity,
        meta={"severity": severity, "rule": rule},
        notes=rule,
        description=f"[{severity}] {rule}",
        catch_exceptions=True,
        **kwargs,
    )


def ident(*parts: str) -> str:
    """A backquoted, dotted ClickHouse identifier (database and table names come from settings)."""
    return ".".join("`" + p.replace("`", "``") + "`" for p in parts)


def literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def literal_list(values: list[str] | tuple[str, ...]) -> str:
    return "(" + ", ".join(literal(v) for v in values) + ")" if values else "('')"
