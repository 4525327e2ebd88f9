"""The `yotposync` command, also run as `python -m yotposync`.

Importing the command's modules takes a few tenths of a second. Ctrl-C in that time would
interrupt an import halfway and print a traceback, so the signal is only noted until the
imports are done, and the command then ends with exit code 130 and one line.
"""

from __future__ import annotations

import signal
import sys
from types import FrameType


def main() -> None:
    """Import the command line and run it."""
    received: list[int] = []

    def note(signum: int, frame: FrameType | None) -> None:
        received.append(signum)

    previous = signal.signal(signal.SIGINT, note)
    from yotposync.cli import main as command

    signal.signal(signal.SIGINT, previous)
    if received:
        print("Stopped by SIGINT while starting; nothing was done.", file=sys.stderr)
        raise SystemExit(130)
    command()


if __name__ == "__main__":
    main()
