"""What a ClickHouse server refuses before it runs a statement, refused here the same way.

chdb runs every statement of a text separated by ``;``; a server (``allow_multi_statements`` is not
a client option there) answers ``Multi-statements are not allowed``. Refusing them here keeps a
model that works on the embedded target working on a server target too.
"""

from __future__ import annotations

import re

_DCL = re.compile(r"^\s*(GRANT|REVOKE|(CREATE|ALTER|DROP)\s+(USER|ROLE|ROW\s+POLICY|QUOTA|SETTINGS\s+PROFILE))\b", re.I)


def _skip_quoted(sql: str, i: int) -> int:
    """Index after the quoted literal or identifier starting at ``i``."""
    quote = sql[i]
    i += 1
    while i < len(sql):
        ch = sql[i]
        if ch == "\\":
            i += 2
            continue
        if ch == quote:
            if i + 1 < len(sql) and sql[i + 1] == quote:  # '' inside a literal
                i += 2
                continue
            return i + 1
        i += 1
    return i


def _skip_comment_or_space(sql: str, i: int) -> int:
    """Index of the first character at or after ``i`` that is neither whitespace nor a comment."""
    while i < len(sql):
        if sql[i].isspace():
            i += 1
        elif sql.startswith("--", i) or sql.startswith("#!", i) or sql.startswith("# ", i):
            end = sql.find("\n", i)
            i = len(sql) if end < 0 else end + 1
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            i = len(sql) if end < 0 else end + 2
        else:
            return i
    return i


_INSERT = re.compile(r"\s*INSERT\b", re.I)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def statement_end(sql: str) -> int | None:
    """Position of a ``;`` followed by another statement, or None for a single statement.

    The data of ``INSERT ... FORMAT <name>`` (dbt's seeds: CSV rows) is data, not SQL: the
    server reads it with the format's parser, so a ``;`` in it ends nothing.
    """
    insert = bool(_INSERT.match(strip_leading_comments(sql)))
    i = 0
    while i < len(sql):
        i = _skip_comment_or_space(sql, i)
        if i >= len(sql):
            return None
        ch = sql[i]
        if ch in "'\"`":
            i = _skip_quoted(sql, i)
        elif ch == "$":  # heredoc: $tag$ ... $tag$
            match = re.match(r"\$([A-Za-z0-9_]*)\$", sql[i:])
            if match:
                end = sql.find(match.group(0), i + len(match.group(0)))
                i = len(sql) if end < 0 else end + len(match.group(0))
            else:
                i += 1
        elif ch.isalpha() or ch == "_":
            word = _WORD.match(sql, i)
            if insert and word and word.group(0).upper() == "FORMAT":
                return None
            i = word.end() if word else i + 1
        elif ch == ";":
            after = _skip_comment_or_space(sql, i + 1)
            while after < len(sql) and sql[after] == ";":
                after = _skip_comment_or_space(sql, after + 1)
            return i if after < len(sql) else None
        else:
            i += 1
    return None


def multi_statement_error(sql: str) -> str | None:
    """The server's message for ``sql`` if it holds more than one statement, else None."""
    end = statement_end(sql)
    if end is None:
        return None
    rest = " ".join(sql[end:].split())[:80]
    return (
        "Code: 62. DB::Exception: Syntax error (Multi-statements are not allowed): "
        f"failed at position {end + 1} (end of query): {rest}. (SYNTAX_ERROR)"
    )


def is_access_management(sql: str) -> bool:
    """GRANT, REVOKE and user/role/policy DDL: statements embedded ClickHouse cannot honour."""
    return bool(_DCL.match(strip_leading_comments(sql)))


def strip_leading_comments(sql: str) -> str:
    return sql[_skip_comment_or_space(sql, 0) :]
