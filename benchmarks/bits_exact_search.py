"""Exact output range of integer Winograd convolution: run time of the search
and the widths it gives against the interval bound it replaced.

For each tile and width setting, :func:`winoforge.winograd.bit_growth` is timed
with a cold cache (the exact output search runs), and the output width is
compared with the sound interval bound over the Winograd positions (each
position's channel sum at its own extreme), which was the only bound for
outputs mixing more than 16 positions before (F(4,3), F(6,3)).

    python benchmarks/bits_exact_search.py [--cin 64] [--tiles 2 4 6] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from itertools import product
from pathlib import Path

from winoforge.winograd import WinogradSpec, bit_growth, signed_bits
from winoforge.winograd import bits

#: (in_bits, weight_bits, in_signed)
SETTINGS = [(4, 4, False), (8, 8, False), (4, 8, False), (8, 4, False), (4, 4, True), (8, 8, True), (2, 2, False)]


def run(tiles: list[int], cin: int) -> list[dict]:
    rows = []
    for m in tiles:
        spec = WinogradSpec(m)
        for xb, wb, xs in SETTINGS:
            bits._output_extremes.cache_clear()
            start = time.perf_counter()
            g = bit_growth(xb, wb, cin, spec, in_signed=xs)
            seconds = time.perf_counter() - start
            loose = [bits._interval_output_range(spec, g.input_range, g.weight_range, cin, i, j)
                     for i, j in product(range(m), repeat=2)]
            interval = (min(0, *(r[0] for r in loose)), max(0, *(r[1] for r in loose)))
            rows.append({
                "tile": str(spec), "in_bits": xb, "weight_bits": wb, "in_signed": xs, "cin": cin,
                "output": list(g.output), "output_bits": g.output_bits, "output_exact": g.output_exact,
                "interval_output": list(interval), "interval_output_bits": signed_bits(*interval),
                "total_bits": g.total_bits, "seconds": round(seconds, 4),
            })
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cin", type=int, default=64)
    parser.add_argument("--tiles", type=int, nargs="+", default=[2, 4, 6], choices=[2, 4, 6])
    parser.add_argument("--out", type=Path, default=None, help="also write the rows as JSON here")
    args = parser.parse_args()
    rows = run(args.tiles, args.cin)
    print(f"{'tile':<13}{'in':>4}{'w':>3}{'in signed':>10}{'exact bits':>11}{'interval bits':>14}"
          f"{'total bits':>11}{'seconds':>9}")
    for r in rows:
        print(f"{r['tile']:<13}{r['in_bits']:>4}{r['weight_bits']:>3}{str(r['in_signed']):>10}"
              f"{r['output_bits']:>11}{r['interval_output_bits']:>14}{r['total_bits']:>11}{r['seconds']:>9.3f}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        meta = {"python": platform.python_version(), "machine": platform.machine(), "cin": args.cin}
        args.out.write_text(json.dumps({"meta": meta, "results": rows}, indent=2) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
