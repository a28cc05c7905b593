"""Training speed: QuantWinogradConv2d vs Brevitas QuantConv2d, forward + backward.

Both layers (same shape, 4-bit weights) run interleaved in one process, several
rounds, median per layer; the ratio is Winograd time / QuantConv2d time.
Writes benchmarks/results/winograd_layer_speed.json.

    python benchmarks/winograd_layer_speed.py [--quick] [--device cuda] [--repeats 7]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

import torch

SHAPES = [(128, 32, 28), (128, 64, 14), (128, 128, 7)]  # (N, C, H=W)


def _time(fn, device: str) -> float:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start


def measure(n: int, c: int, h: int, device: str, repeats: int, m: int) -> dict:
    from brevitas.nn import QuantConv2d

    from winoforge.model.quant_winograd import QuantWinogradConv2d

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        layers = {
            "winograd": QuantWinogradConv2d(c, c, m=m, weight_bit_width=4).to(device),
            "quantconv": QuantConv2d(c, c, 3, padding=1, bias=False, weight_bit_width=4).to(device),
        }
    x = torch.randn(n, c, h, h, device=device, requires_grad=True)

    def step(layer):
        return lambda: layer(x).sum().backward()

    times = {k: [] for k in layers}
    for layer in layers.values():  # warm-up
        step(layer)()
    for _ in range(repeats):
        for k, layer in layers.items():
            times[k].append(_time(step(layer), device))
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"shape": [n, c, h, h], "m": m, "seconds": med, "ratio": med["winograd"] / med["quantconv"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="small shapes, 2 repeats")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    shapes = [(16, 16, 14), (16, 32, 7)] if args.quick else SHAPES
    repeats = 2 if args.quick else args.repeats
    rows = []
    print(f"{'N,C,H':<14}{'m':>3}{'winograd s':>12}{'quantconv s':>13}{'ratio':>8}")
    for n, c, h in shapes:
        for m in (2, 4):
            r = measure(n, c, h, args.device, repeats, m)
            rows.append(r)
            print(f"{f'{n},{c},{h}':<14}{m:>3}{r['seconds']['winograd']:>12.4f}{r['seconds']['quantconv']:>13.4f}{r['ratio']:>8.2f}")
    data = {"benchmark": "winograd_layer_speed", "target_ratio_max": 2.5, "device": args.device,
            "torch": torch.__version__, "threads": torch.get_num_threads(), "python": platform.python_version(),
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "quick": args.quick, "results": rows}
    if not args.quick:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "winograd_layer_speed.json").write_text(json.dumps(data, indent=2) + "\n")
        print(f"wrote {args.out / 'winograd_layer_speed.json'}")


if __name__ == "__main__":
    main()
