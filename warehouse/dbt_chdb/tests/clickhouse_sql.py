"""ClickHouse versions of dbt's PostgreSQL test fixtures, made from the fixtures themselves.

dbt-tests-adapter's setup scripts create and change tables in PostgreSQL SQL. Adapter repositories
replace them with their own; here each ClickHouse version is derived from the pinned package's
text (so its rows stay dbt's, never copied into this repository) by explicit, per-fixture
replacements that fail loudly when the package's text changes. A script of several statements is
split with the adapter's own splitter, since chdb refuses multi-statements as a server does.
"""

from __future__ import annotations

from collections.abc import Iterable

from dbt.adapters.chdb.statements import statement_end, strip_leading_comments


def statements(script: str) -> list[str]:
    """The statements of ``script`` (``;``-separated), each without its ``;``."""
    out: list[str] = []
    rest = script
    while True:
        end = statement_end(rest)
        if end is None:
            last = rest.strip().rstrip(";").strip()
            if strip_leading_comments(last):
                out.append(last)
            return out
        head = rest[:end].strip()
        if strip_leading_comments(head):
            out.append(head)
        rest = rest[end + 1 :]


def replace_all(text: str, replacements: Iterable[tuple[str, str]]) -> str:
    """``text`` with each ``(old, new)`` replaced; an ``old`` that is not there is an error.

    The fixtures are dbt-tests-adapter's: a replacement that no longer matches means the pinned
    package changed, and the ClickHouse version must be looked at again rather than run as is.
    """
    for old, new in replacements:
        if old not in text:
            raise AssertionError(f"fixture text changed: {old!r} not found")
        text = text.replace(old, new)
    return text


def run_script(project, script: str) -> None:
    """Run each statement of a fixture script in turn (``project`` is dbt's TestProjInfo)."""
    for sql in statements(script):
        project.run_sql(sql)
