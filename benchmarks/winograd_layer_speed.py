"""Training speed: QuantWinogradConv2d vs Brevitas QuantConv2d, forward + backward.

Both layers get the same shape, the same weight bit width (per-output-channel
float scales) and the same float input; they run interleaved in one process
(alternating which goes first), several rounds, and the median per layer is
compared: ratio = Winograd time / QuantConv2d time (target <= 2.5).  The 1-minute
load average before and after is recorded: on a shared machine other processes
slow both layers, and not always equally.

Writes benchmarks/results/winograd_layer_speed.json (``_quick`` / ``_channels_last`` suffixes
for those options; or --out DIR).

    python benchmarks/winograd_layer_speed.py [--quick] [--device cuda] [--repeats 9] [--threads N]
                                              [--channels-last] [--out DIR] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

import torch

SHAPES = [(128, 32, 28), (128, 64, 14), (128, 128, 7)]  # (N, C, H=W), Cin = Cout = C
QUICK_SHAPES = [(16, 16, 14), (16, 32, 7)]


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _load() -> float | None:
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def build_layers(c: int, m: int, bits: int, device: str) -> dict[str, torch.nn.Module]:
    from brevitas.nn import QuantConv2d

    from winoforge.model.winograd_layer import QuantWinogradConv2d

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        layers = {
            "winograd": QuantWinogradConv2d(c, c, m=m, weight_bit_width=bits),
            "quantconv": QuantConv2d(c, c, 3, padding=1, bias=False, weight_bit_width=bits),
        }
    return {k: v.to(device) for k, v in layers.items()}


def measure(n: int, c: int, h: int, m: int, bits: int, device: str, repeats: int,
            channels_last: bool = False) -> dict:
    torch.manual_seed(0)
    layers = build_layers(c, m, bits, device)
    x = torch.randn(n, c, h, h, device=device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
        layers = {k: v.to(memory_format=torch.channels_last) for k, v in layers.items()}
    x.requires_grad_(True)

    def run(layer) -> float:
        x.grad = None
        layer.zero_grad(set_to_none=True)
        _sync(device)
        start = time.perf_counter()
        layer(x).sum().backward()
        _sync(device)
        return time.perf_counter() - start

    names = list(layers)
    for name in names:  # warm-up (allocator, MKL/oneDNN kernels, Brevitas caches)
        run(layers[name])
        run(layers[name])
    times: dict[str, list[float]] = {k: [] for k in names}
    for rep in range(repeats):
        order = names if rep % 2 == 0 else names[::-1]
        for name in order:
            times[name].append(run(layers[name]))
    med = {k: statistics.median(v) for k, v in times.items()}
    ratios = {k: med[k] / med["quantconv"] for k in names if k != "quantconv"}
    return {"shape": [n, c, h, h], "cin": c, "cout": c, "m": m, "weight_bit_width": bits,
            "memory_format": "channels_last" if channels_last else "contiguous",
            "median_s": med, "all_s": times, "ratio": ratios["winograd"], "ratios": ratios}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--bits", type=int, default=4, help="weight bit width of both layers")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--quick", action="store_true", help="tiny shapes, 3 repeats")
    parser.add_argument("--channels-last", action="store_true", help="input (and conv weights) channels-last")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA device available")
    shapes = QUICK_SHAPES if args.quick else SHAPES
    repeats = 3 if args.quick else args.repeats
    load_before = _load()
    rows = []
    header = f"{'N,C,H':<13}{'m':>2}{'winograd ms':>13}{'quantconv ms':>14}{'ratio':>7}"
    print(header)
    for n, c, h in shapes:
        for m in (2, 4):
            r = measure(n, c, h, m, args.bits, args.device, repeats, args.channels_last)
            rows.append(r)
            line = (f"{f'{n},{c},{h}':<13}{m:>2}{r['median_s']['winograd'] * 1e3:>13.1f}"
                    f"{r['median_s']['quantconv'] * 1e3:>14.1f}{r['ratio']:>7.2f}")
            print(line, flush=True)
    data = {
        "benchmark": "winograd_layer_speed",
        "what": "forward+backward of QuantWinogradConv2d (winoforge.model.winograd_layer) vs brevitas "
                "QuantConv2d, same shape and weight bit width, float input, median of interleaved repeats",
        "target_ratio_max": 2.5,
        "device": args.device,
        "device_name": torch.cuda.get_device_name() if args.device.startswith("cuda") else _cpu_name(),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "quick": args.quick,
        "memory_format": "channels_last" if args.channels_last else "contiguous",
        "repeats": repeats,
        "load_avg_1min_before": load_before,
        "load_avg_1min_after": _load(),
        "max_ratio": max(r["ratio"] for r in rows),
        "results": rows,
    }
    print(f"max ratio {data['max_ratio']:.2f} (target <= 2.5); "
          f"1-min load average {load_before} -> {data['load_avg_1min_after']}")
    if not args.no_write:
        args.out.mkdir(parents=True, exist_ok=True)
        name = "winograd_layer_speed" + ("_quick" if args.quick else "") + (
            "_channels_last" if args.channels_last else "") + ".json"
        (args.out / name).write_text(json.dumps(data, indent=2) + "\n")
        print(f"wrote {args.out / name}")
    return data


if __name__ == "__main__":
    main()
