"""Every use of a library's private internals, one module per library.

Each module reaches into exactly one library (``faust``, ``kafka_python``) for a measured gain,
says that gain in its docstring, checks the installed version when it is imported and refuses an
unknown one loudly (:class:`CompatError`), so that an upgrade fails at start-up instead of
misbehaving later. ``tests/unit/test_compat.py`` pins the behaviour each one relies on. Nothing
outside this package touches a library's private names (ruff SLF001 is enforced elsewhere).
"""

from __future__ import annotations


class CompatError(RuntimeError):
    """The installed version of a library is not one whose internals a shim was written for."""


def require(library: str, installed: str, supported: tuple[str, ...]) -> None:
    """Refuse ``installed`` unless it starts with one of the ``supported`` version prefixes."""
    if not installed.startswith(supported):
        raise CompatError(
            f"{library} {installed} is not a version fupin's shim for it was written for "
            f"({', '.join(p + '*' for p in supported)}): install the version of requirements.lock, "
            f"or check fupin/compat/ against the new version's internals and extend its list"
        )
