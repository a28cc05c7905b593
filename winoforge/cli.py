"""The ``winoforge`` command line: thin subcommands over library functions."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from typing import Sequence

import numpy as np

from winoforge.winograd import (
    NETWORKS,
    SUPPORTED_TILES,
    WinogradSpec,
    bit_growth,
    integer_filter_transform,
    op_counts,
    pack_srbs,
    srbs_mask,
    unpack_srbs,
    direct_conv2d,
    winograd_conv2d,
)


def _counts_table(counts) -> str:
    rows = [f"{'layer':<22}{'direct MMul':>12}{'Winograd':>12}{'SRBS':>12}{'x wino':>8}{'x SRBS':>8}  notes"]
    for lc in counts.layers:
        notes = []
        if not lc.winograd_applied:
            notes.append("direct (not 3x3 stride 1)")
        elif counts.sub_row is not None and not lc.srbs_applied:
            notes.append(f"dense (Cin={lc.layer.cin} not a multiple of sub_row)")
        rows.append(
            f"{lc.layer.name:<22}{lc.direct.mults / 1e6:>12.2f}{lc.winograd.mults / 1e6:>12.2f}"
            f"{lc.srbs.mults / 1e6:>12.2f}{lc.direct.mults / lc.winograd.mults:>8.2f}"
            f"{lc.direct.mults / lc.srbs.mults:>8.2f}  {'; '.join(notes)}"
        )
    rows.append(
        f"{'total':<22}{counts.direct.mults / 1e6:>12.2f}{counts.winograd.mults / 1e6:>12.2f}"
        f"{counts.srbs.mults / 1e6:>12.2f}{counts.mult_reduction('winograd'):>8.2f}{counts.mult_reduction('srbs'):>8.2f}"
    )
    return "\n".join(rows)


def cmd_counts(args: argparse.Namespace) -> int:
    layers = NETWORKS[args.network]()
    counts = op_counts(layers, WinogradSpec(args.m), sub_row=args.sub_row, keep=args.keep,
                       w_bits=args.w_bits, a_bits=args.a_bits)
    if args.json:
        out = {
            "network": args.network, "m": args.m, "sub_row": args.sub_row, "keep": args.keep,
            "direct": asdict(counts.direct), "winograd": asdict(counts.winograd), "srbs": asdict(counts.srbs),
            "layers": [{"name": lc.layer.name, "direct": asdict(lc.direct), "winograd": asdict(lc.winograd),
                        "srbs": asdict(lc.srbs), "winograd_applied": lc.winograd_applied,
                        "srbs_applied": lc.srbs_applied} for lc in counts.layers],
        }
        print(json.dumps(out, indent=2))
    else:
        print(f"{args.network}, F({args.m}x{args.m},3x3)"
              + (f", SRBS sub_row={args.sub_row} keep={args.keep}" if args.sub_row else "")
              + " -- multiplications per image (millions) and reduction against direct convolution")
        print(_counts_table(counts))
    return 0


def cmd_bits(args: argparse.Namespace) -> int:
    g = bit_growth(args.in_bits, args.weight_bits, args.cin, WinogradSpec(args.m),
                   in_signed=not args.unsigned_input)
    print(f"F({args.m}x{args.m},3x3), input {args.in_bits}-bit {'unsigned' if args.unsigned_input else 'signed'}, "
          f"weights {args.weight_bits}-bit, {args.cin} accumulated channels")
    for stage in ("input_transform", "product", "accumulator", "output"):
        lo, hi = getattr(g, stage)
        print(f"  {stage:<16}[{lo}, {hi}]  {getattr(g, stage + '_bits')} bits")
    print(f"  register width   {g.total_bits} bits" + ("" if g.output_exact else "  (output: sound interval bound)"))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """What exists today: the exact Winograd/SRBS core, end to end on random data."""
    rng = np.random.default_rng(args.seed)
    print("winoforge demo -- the Winograd/SRBS core (training, FINN and runtime stages: see README)\n")
    x = rng.integers(0, 256, size=(2, 16, 28, 28))  # 8-bit unsigned activations
    g = rng.integers(-8, 8, size=(32, 16, 3, 3))  # 4-bit signed kernel
    for m, _ in SUPPORTED_TILES[:2]:
        spec = WinogradSpec(m)
        U, D = integer_filter_transform(g, spec)
        same = np.array_equal(winograd_conv2d(x, U, spec), D * direct_conv2d(x, g))
        print(f"{spec}: {spec.t * spec.t} multiplies per tile for {spec.m * spec.m * 9} direct; "
              f"integer Winograd == {D} x direct convolution: {same}")
        if not same:
            return 1
    spec = WinogradSpec(2)
    U = rng.integers(-8, 8, size=(32, 16, 4, 4))
    U = np.where(srbs_mask(U, 8, 2), U, 0)
    packed = pack_srbs(U, 8, 2, value_bits=4)
    ok = np.array_equal(unpack_srbs(packed), U)
    print(f"SRBS(sub_row=8, keep=2): packed {packed.size_bits} bits vs dense {packed.dense_size_bits} bits "
          f"({packed.dense_size_bits / packed.size_bits:.2f}x smaller), exact round trip: {ok}")
    print(f"accumulator for 8-bit unsigned inputs, 4-bit weights, Cin=16 (SRBS: {16 * 2 // 8} terms): "
          f"{bit_growth(8, 4, 16 * 2 // 8, spec, in_signed=False).total_bits} bits\n")
    for network in NETWORKS:
        counts = op_counts(NETWORKS[network](), spec, sub_row=8, keep=2)
        print(f"{network}: multiplications reduced {counts.mult_reduction('winograd'):.2f}x by F(2,3), "
              f"{counts.mult_reduction('srbs'):.2f}x by F(2,3) + SRBS 25% density")
    return 0 if ok else 1


def cmd_train_teacher(args: argparse.Namespace) -> int:
    # torch/brevitas load only for the commands that train: `counts`/`bits` stay numpy-only
    from winoforge.model.config import load_config
    from winoforge.model.recipes import TeacherRunConfig, train_teacher

    cfg = load_config(TeacherRunConfig, args.config, args.set)
    final = train_teacher(cfg)
    if final:
        print(f"teacher {cfg.arch}: test accuracy {final['acc']:.4f} -> {cfg.out_dir / 'model.safetensors'}")
    return 0


def cmd_distill(args: argparse.Namespace) -> int:
    from winoforge.model.config import load_config
    from winoforge.model.recipes import DistillRunConfig, distill

    cfg = load_config(DistillRunConfig, args.config, args.set)
    final = distill(cfg)
    if final:
        print(f"student: test accuracy {final['acc']:.4f} at SRBS density {final['density']:g} "
              f"-> {cfg.out_dir / 'model.safetensors'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="winoforge", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    ms = sorted(m for m, _ in SUPPORTED_TILES)

    p = sub.add_parser("counts", help="multiplications/additions/BOPs: direct, Winograd, SRBS Winograd")
    p.add_argument("--network", choices=sorted(NETWORKS), default="vgg16-cifar10")
    p.add_argument("--m", type=int, choices=ms, default=2, help="Winograd output tile F(m x m, 3x3)")
    p.add_argument("--sub-row", type=int, default=None)
    p.add_argument("--keep", type=int, default=None)
    p.add_argument("--w-bits", type=int, default=8)
    p.add_argument("--a-bits", type=int, default=8)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_counts)

    p = sub.add_parser("bits", help="exact bit growth of integer Winograd convolution")
    p.add_argument("--in-bits", type=int, required=True)
    p.add_argument("--weight-bits", type=int, required=True)
    p.add_argument("--cin", type=int, required=True, help="accumulated channels (SRBS: cin*keep/sub_row)")
    p.add_argument("--m", type=int, choices=ms, default=2)
    p.add_argument("--unsigned-input", action="store_true")
    p.set_defaults(func=cmd_bits)

    p = sub.add_parser("train-teacher", help="train an FP32 teacher (resumes a killed run)")
    p.add_argument("--config", type=str, default=None, help="TOML file (configs/...)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set optim.epochs=2 (repeatable)")
    p.set_defaults(func=cmd_train_teacher)

    p = sub.add_parser("distill", help="train a quantized Winograd-SRBS student with KD and gradual pruning")
    p.add_argument("--config", type=str, default=None, help="TOML file (configs/...)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value")
    p.set_defaults(func=cmd_distill)

    p = sub.add_parser("demo", help="the main demonstration of what exists today")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ValueError as err:
        print(f"winoforge {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
