"""Every command has help text and is named in the README."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import click
import pytest

from yotposync.cli import LAZY_COMMANDS, main

README = (Path(__file__).parents[2] / "README.md").read_text()


def all_commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    found: list[tuple[str, click.Command]] = []
    context = click.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        assert command is not None, f"`yotposync {prefix}{name}` is listed but cannot be loaded"
        path = f"{prefix}{name}"
        found.append((path, command))
        if isinstance(command, click.Group):
            found.extend(all_commands(command, path + " "))
    return found


COMMANDS = all_commands(main)


def test_every_command_is_listed() -> None:
    names = {path for path, _ in COMMANDS}
    for name in ("run", "catch-up", "status", "sandbox", "check", "customer show", "offers sync"):
        assert name in names


@pytest.mark.parametrize("name", sorted(LAZY_COMMANDS))
def test_lazy_command_has_its_own_name(name: str) -> None:
    module_name, attribute = LAZY_COMMANDS[name].split(":")
    command = getattr(importlib.import_module(module_name), attribute)
    assert command.name == name


def test_cli_import_skips_other_tools() -> None:
    code = (
        "import sys, yotposync.cli; "
        "print(sorted(m for m in sys.modules if m.startswith(('yotposync.sandbox', "
        "'yotposync.offers_cli', 'yotposync.ops.commands', 'yotposync.customers_cli', "
        "'yotposync.customer_service', 'yotposync.status'))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=[path for path, _ in COMMANDS])
def test_command_has_help(path: str, command: click.Command) -> None:
    assert command.help, f"`yotposync {path}` has no help text"
    for param in command.params:
        if isinstance(param, click.Option) and not param.hidden:
            assert param.help, f"option {param.opts} of `yotposync {path}` has no help text"


@pytest.mark.parametrize(
    "path",
    [path for path, command in COMMANDS if not isinstance(command, click.Group)],
)
def test_command_named_in_readme(path: str) -> None:
    assert f"yotposync {path}" in README
