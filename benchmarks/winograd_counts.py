"""Multiplication reduction of Winograd F(2,3)/F(4,3), dense and SRBS, against
direct convolution for VGG16 (CIFAR-10) and ResNet-18 (ImageNet).

These are exact operation counts (deterministic, not timings).  Writes
``benchmarks/results/winograd_counts.json`` and ``winograd_counts.png``.

    python benchmarks/winograd_counts.py [--out DIR] [--sub-row 8] [--bits 4]
"""

from __future__ import annotations

import argparse
import json
import platform
from datetime import datetime, timezone
from pathlib import Path

from winoforge.winograd import NETWORKS, WinogradSpec, op_counts

DENSITIES = (1.0, 0.5, 0.25, 0.125)


def run(sub_row: int, bits: int) -> dict:
    results = []
    for network, build in NETWORKS.items():
        layers = build()
        for m in (2, 4):
            spec = WinogradSpec(m)
            for density in DENSITIES:
                keep = round(density * sub_row)
                counts = op_counts(layers, spec, sub_row=sub_row, keep=keep, w_bits=bits, a_bits=bits)
                results.append({
                    "network": network,
                    "tile": str(spec),
                    "m": m,
                    "density": density,
                    "sub_row": sub_row,
                    "keep": keep,
                    "direct_mults": counts.direct.mults,
                    "winograd_mults": counts.srbs.mults,
                    "mult_reduction": counts.direct.mults / counts.srbs.mults,
                    "bops_reduction": counts.direct.bops / counts.srbs.bops,
                    "eligible_layers": sum(lc.winograd_applied for lc in counts.layers),
                    "srbs_layers": sum(lc.srbs_applied for lc in counts.layers),
                    "layers": len(counts.layers),
                })
    return {
        "benchmark": "winograd_counts",
        "what": "multiplications per image, direct / (Winograd with SRBS density); "
                "BOPs use W{b}A{b} with the widened Winograd-domain activations".format(b=bits),
        "bits": bits,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "results": results,
    }


def plot(data: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    networks = list(NETWORKS)
    fig, axes = plt.subplots(1, len(networks), figsize=(6 * len(networks), 4), sharey=True)
    width = 0.38
    for ax, network in zip(axes, networks):
        for k, m in enumerate((2, 4)):
            rows = [r for r in data["results"] if r["network"] == network and r["m"] == m]
            xs = [i + (k - 0.5) * width for i in range(len(rows))]
            bars = ax.bar(xs, [r["mult_reduction"] for r in rows], width, label=f"F({m}x{m},3x3)")
            ax.bar_label(bars, fmt="%.1f", fontsize=8)
        ax.set_xticks(range(len(DENSITIES)), [f"{d:g}" for d in DENSITIES])
        ax.set_xlabel(f"SRBS density keep/sub_row (sub_row={data['results'][0]['sub_row']})")
        ax.set_title(network)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("multiplication reduction vs direct conv (x)")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--sub-row", type=int, default=8)
    parser.add_argument("--bits", type=int, default=4)
    args = parser.parse_args()
    data = run(args.sub_row, args.bits)
    print(f"{'network':<20}{'tile':<13}{'density':>8}{'x mults':>9}{'x BOPs':>9}")
    for r in data["results"]:
        print(f"{r['network']:<20}{r['tile']:<13}{r['density']:>8g}{r['mult_reduction']:>9.2f}{r['bops_reduction']:>9.2f}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "winograd_counts.json").write_text(json.dumps(data, indent=2) + "\n")
    plot(data, args.out / "winograd_counts.png")
    print(f"wrote {args.out / 'winograd_counts.json'} and winograd_counts.png")


if __name__ == "__main__":
    main()
