"""Every command of the one CLI, and every subcommand of its groups, answers --help."""

from __future__ import annotations

import importlib

import click
import pytest
from click.testing import CliRunner

from fupin.cli import COMMANDS, cli


def _walk(name: str, command: click.Command, path: tuple[str, ...]):
    yield path, command
    if isinstance(command, click.Group):
        for sub_name, sub in command.commands.items():
            yield from _walk(sub_name, sub, (*path, sub_name))


def _all_paths() -> list[tuple[str, ...]]:
    paths = []
    for name, (target, _short) in sorted(COMMANDS.items()):
        module, attr = target.split(":")
        command = getattr(importlib.import_module(module), attr)
        paths += [p for p, _ in _walk(name, command, (name,))]
    return paths


def test_top_level_help_lists_every_command():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0, result.output
    for name in COMMANDS:
        assert name in result.output


@pytest.mark.parametrize("path", _all_paths(), ids=lambda p: " ".join(p))
def test_every_command_has_help(path):
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    # A real description, not just the usage line.
    assert len(result.output.strip().splitlines()) > 2


def test_unknown_command_is_a_clear_error():
    result = CliRunner().invoke(cli, ["no-such-command"])
    assert result.exit_code != 0
    assert "No such command" in result.output
