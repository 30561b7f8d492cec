"""python -m models list | prefetch | train | evaluate"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("train", help="train a local model on ShapesWorld and write weights/<name>.*")
    p.add_argument("name")
    p.add_argument("--steps", type=int)
    p.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.command == "train":
        from models.training import segmentation

        kwargs = {"seed": args.seed} | ({"steps": args.steps} if args.steps else {})
        segmentation.train(**kwargs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
