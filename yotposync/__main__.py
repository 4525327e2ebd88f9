"""The `yotposync` command, also run as `python -m yotposync`.

Importing the command's modules takes a few tenths of a second, and Ctrl-C in that time
would print a traceback. It ends the command with exit code 130 and one line instead.
"""

from __future__ import annotations

import sys


def main() -> None:
    """Import the command line and run it."""
    try:
        from yotposync.cli import main as command
    except KeyboardInterrupt:
        print("Stopped by SIGINT while starting; nothing was done.", file=sys.stderr)
        raise SystemExit(130) from None
    command()


if __name__ == "__main__":
    main()
