"""Every command has help text and is named in the README."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from yotposync.cli import main

README = (Path(__file__).parents[2] / "README.md").read_text()


def all_commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    found: list[tuple[str, click.Command]] = []
    for name, command in sorted(group.commands.items()):
        path = f"{prefix}{name}"
        found.append((path, command))
        if isinstance(command, click.Group):
            found.extend(all_commands(command, path + " "))
    return found


COMMANDS = all_commands(main)


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
