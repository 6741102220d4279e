"""``python -m xbar_circuit``: the same command line as ``xbar``."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    main(prog_name="xbar")
