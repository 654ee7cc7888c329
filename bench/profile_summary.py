"""Summarise py-spy's collapsed stacks (`bench/route.py --profile FILE`): where a request's time goes.

    .venv/bin/python bench/profile_summary.py FILE [--top 40] [--match app/]

Prints, for the functions seen most, the share of samples in which each is on the stack (inclusive).
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("file", type=Path)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--match", default="", help="only frames whose text contains this")
    args = parser.parse_args()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in args.file.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        samples = int(count)
        total += samples
        for frame in set(stack.split(";")):
            if args.match in frame:
                inclusive[frame] += samples
    for frame, samples in inclusive.most_common(args.top):
        print(f"{100 * samples / total:5.1f}%  {frame[:150]}")
    print(f"{total} samples")


if __name__ == "__main__":
    main()
