"""Check the plus residuals that ``jwst-mbkg-plus demo`` printed: ``check_demo.py LOG``.

The demo prints one row per slit, ``name kind [stock%] plus%``, the plus column
last. Exits 1, naming the slits, if any plus residual is beyond ``--max-percent``
or if no row was found.
"""

import argparse
import math
import re
import sys

ROW = re.compile(r"^\s+(\S+)\s+([a-z_]+\*?)\s+((?:[+-]?(?:\d+\.\d+|nan)%\s*)+)$")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("log")
    parser.add_argument("--max-percent", type=float, default=0.3)
    args = parser.parse_args()
    rows = {}
    with open(args.log) as f:
        for line in f:
            match = ROW.match(line.rstrip("\n"))
            if match:
                cells = re.findall(r"([+-]?(?:\d+\.\d+|nan))%", match.group(3))
                rows[match.group(1)] = float(cells[-1])
    if not rows:
        print(f"no residual rows in {args.log}")
        return 1
    bad = {k: v for k, v in rows.items() if not (math.isfinite(v) and abs(v) <= args.max_percent)}
    worst = max(abs(v) for v in rows.values())
    print(f"demo: {len(rows)} slits, largest plus residual {worst:.2f}% "
          f"(limit {args.max_percent}%)")
    if bad:
        print("beyond the limit:", ", ".join(f"{k} {v:+.2f}%" for k, v in bad.items()))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
