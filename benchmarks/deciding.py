"""The deciding benchmark: the daemon's own work per ticket, without HTTP.

`run` starts a sandbox with a generated store and runs `benchmarks.deciding_replay` in its
own process, which reads the store's pages once and replays the transactions job over them
from memory (see that module). This module imports nothing of yotposync, so that the harness
process stays small: Linux reports a child's peak RSS as at least the RSS of the process
that started it.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.catch_up import since
from benchmarks.harness import PYTHON, SandboxProcess, run_measured, write_config


def run(tickets: int, repeat: int) -> dict[str, Any]:
    """Start a sandbox with a generated store of `tickets` tickets and replay its reading phase."""
    with tempfile.TemporaryDirectory(prefix="yotposync-bench-") as folder:
        workdir = Path(folder)
        config = workdir / "yotposync.toml"
        output = workdir / "deciding.json"
        print(f"deciding benchmark: {tickets} tickets, {repeat} replays ...", flush=True)
        with SandboxProcess(tickets) as sandbox:
            write_config(config, sandbox, workdir / "unused-ledger.sqlite3")
            child = run_measured(
                [
                    PYTHON,
                    "-m",
                    "benchmarks.deciding_replay",
                    "--config",
                    str(config),
                    "--since",
                    since(),
                    "--repeat",
                    str(repeat),
                ],
                stdout=output,
                stderr=workdir / "deciding.log",
            )
        if child.exit_code != 0:
            log = (workdir / "deciding.log").read_text()[-2000:]
            raise RuntimeError(f"the deciding replay exited {child.exit_code}:\n{log}")
        figures: dict[str, Any] = json.loads(output.read_text())
    figures["store_size"] = tickets
    return figures
