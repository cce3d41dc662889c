"""Write a sandbox directory as JSON to stdout.

``python -m genesys_prov.sandbox.data > examples/demo-directory.json`` writes the demo
directory; ``--users N [--seed S]`` writes a synthetic one instead.
"""

from __future__ import annotations

import argparse
import json
import sys

from genesys_prov.sandbox.directory import demo_directory, generate_directory


def main(argv: list[str] | None = None) -> None:
    """Write the demo (or a synthetic) directory as JSON to stdout."""
    parser = argparse.ArgumentParser(description="Write a sandbox directory as JSON.")
    parser.add_argument("--users", type=int, default=None,
                        help="a synthetic directory of N users instead of the demo")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    directory = demo_directory() if args.users is None else generate_directory(
        args.users, args.seed
    )
    sys.stdout.write(json.dumps(directory, ensure_ascii=False, indent=2) + "\n")


if __name__ == "__main__":
    main()
