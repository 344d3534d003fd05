"""Write a stack file for a second local stack beside the default one (deploy/local/README.md, "Stacks").

    .venv/bin/python deploy/local/stack.py new PATH [--run-dir DIR]

Free ports for PostgreSQL, Kafka (and its controller), the five services and their metrics, and a
run directory of its own (default: `run` beside PATH). Then, e.g.:
`FLEXENROLL_STACK=PATH make up`, `FLEXENROLL_STACK=PATH .venv/bin/flexctl lag`, `make down STACK=PATH`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# Run as a file, so make the repo root importable even without the editable install.
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from ops.stack import new_stack_file


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    new = commands.add_parser("new", help="write a stack file with free ports")
    new.add_argument("path", type=Path)
    new.add_argument("--run-dir", type=Path, help="its runtime state (default: `run` beside PATH)")
    args = parser.parse_args()
    if args.path.exists():
        print(f"stack: {args.path} exists; not overwriting it", file=sys.stderr)
        return 1
    print(new_stack_file(args.path, args.run_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
