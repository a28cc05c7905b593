"""The ``winoforge`` command line: thin subcommands over library functions."""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
import tomllib
from dataclasses import asdict
from pathlib import Path
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


# ------------------------------------------------------------------ argument checking
# Every option is checked where it is parsed: a bad value ends the command with one line on
# stderr naming the option (argparse's "argument --keep: ..."), never a traceback.


class _Parser(argparse.ArgumentParser):
    """argparse, but an error is one line (the usage is one ``--help`` away)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _int_at_least(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer; allowed: integer >= {minimum}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is out of range; allowed: integer >= {minimum}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def _positive_number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; allowed: a finite number > 0") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text} is out of range; allowed: a finite number > 0")
    return value


def _readable_file(text: str) -> str:
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text}: no such file")
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text}: not a file")
    if not os.access(path, os.R_OK):
        raise argparse.ArgumentTypeError(f"{text}: not readable (permission denied)")
    return text


def _toml_file(text: str) -> str:
    _readable_file(text)
    try:
        tomllib.loads(Path(text).read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise argparse.ArgumentTypeError(f"{text}: not a TOML config (not UTF-8 text)") from None
    except tomllib.TOMLDecodeError as err:
        raise argparse.ArgumentTypeError(f"{text}: not valid TOML: {err}") from None
    except OSError as err:
        raise argparse.ArgumentTypeError(f"{text}: cannot be read: {err.strerror}") from None
    return text


def _existing_dir(text: str) -> str:
    if not Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text}: no such folder")
    return text


def _check_writable(text: str, path: Path) -> None:
    for parent in path.parents:  # the nearest existing folder must take new files
        if parent.exists():
            if not parent.is_dir():
                raise argparse.ArgumentTypeError(f"{text}: {parent} is a file, not a folder")
            if not os.access(parent, os.W_OK):
                raise argparse.ArgumentTypeError(f"{text}: {parent} is not writable")
            return


def _output_file(text: str) -> str:
    """A file to write; missing folders are created."""
    if Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"{text}: is a folder; give a file name")
    _check_writable(text, Path(text))
    return text


def _output_dir(text: str) -> str:
    """A folder to write into; created if missing."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: is a file, not a folder")
    _check_writable(text, path / "x")
    return text


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _package_name(text: str) -> str:
    # the package and work folders <root>/<name> are replaced by a build: never a path
    if not _NAME.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed; allowed: a folder name of letters, digits, "
                                         "'.', '_' and '-' starting with a letter or digit")
    return text


def _model_name(text: str) -> str:
    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed; allowed: a model name of lower-case letters, "
                                         "digits, '.', '_' and '-' (see `winoforge models list`)")
    return text


def _git_commit(text: str) -> str:
    if not re.fullmatch(r"[0-9a-f]{7,40}", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not allowed; allowed: a git commit hash (7-40 hex digits)")
    return text


def _widths(text: str) -> list:
    widths = []
    for item in text.split(","):
        item = item.strip()
        if item == "M":
            widths.append("M")
            continue
        try:
            width = int(item)
        except ValueError:
            width = 0
        if width < 1:
            raise argparse.ArgumentTypeError(f"{text!r}: item {item!r} is not allowed; allowed: comma-separated "
                                             "channel counts >= 1 and M (2x2 max pooling), e.g. 16,M,32,M")
        widths.append(width)
    if not any(w != "M" for w in widths):
        raise argparse.ArgumentTypeError(f"{text!r} has no convolution; allowed: e.g. 16,M,32,M")
    return widths


def _one_line(err: BaseException) -> str:
    if isinstance(err, OSError) and err.strerror and err.filename:
        return f"{err.filename}: {err.strerror}"
    return " ".join(str(err).split()) or type(err).__name__


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


#: test images of the demo's untrained fallback (exactness and cost only; its accuracy means nothing)
REFERENCE_IMAGES = 1000


def cmd_demo(args: argparse.Namespace) -> int:
    """The exact Winograd/SRBS core on random data, then the trained student (model registry)
    through export, both FINN builds and the simulated device on the test set."""
    if not args.core_only:  # a missing model or an unknown board stops the demo before any work, named
        from winoforge.hw.boards import get_board

        get_board(args.board)
        if args.widths is None:
            from winoforge.model.pretrained import read_card

            try:
                read_card(args.pretrained, args.models_dir)
            except FileNotFoundError as err:
                if args.or_reference is None:
                    raise
                # said, not hidden: the trained student is not shipped yet, the run shows the flow on the
                # untrained reference of the same shape (its accuracy means nothing; exactness and cost do)
                print(f"NOTE: {' '.join(str(err).split())}\nNOTE: running the UNTRAINED reference student "
                      f"{','.join(map(str, args.or_reference))} instead (a hardware-cost reference; "
                      f"{min(args.images, REFERENCE_IMAGES):,} test images check exactness, not accuracy)\n")
                args.widths, args.images = args.or_reference, min(args.images, REFERENCE_IMAGES)
    rng = np.random.default_rng(args.seed)
    print("winoforge demo -- the Winograd/SRBS core, then export, FINN builds and the runtime (training: see README)\n")
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
    g = bit_growth(8, 4, 16, spec, in_signed=False)
    print(f"exact widths for 8-bit unsigned inputs, 4-bit weights, Cin=16: accumulator {g.accumulator_bits} bits, "
          f"output {g.output_bits} bits (reached by a witness input)\n")
    for network in NETWORKS:
        counts = op_counts(NETWORKS[network](), spec, sub_row=8, keep=2)
        print(f"{network}: multiplications reduced {counts.mult_reduction('winograd'):.2f}x by F(2,3), "
              f"{counts.mult_reduction('srbs'):.2f}x by F(2,3) + SRBS 25% density")
    if not ok:
        return 1
    return 0 if args.core_only else _demo_hardware(args)


def _demo_hardware(args: argparse.Namespace) -> int:
    """The student through export (checked), both FINN builds (ours and the stock-FINN baseline of
    the same weights) and the simulated device on ``--images`` test images (winoforge.hw.demo)."""
    from winoforge.hw.demo import demo_student, run_demo

    student = demo_student(args.pretrained, args.widths, args.models_dir, args.data_dir)
    print(f"\nhardware flow on the {student.label}")
    r = run_demo(student, work=args.work, images=args.images, target_fps=args.target_fps, board=args.board,
                 data_dir=args.data_dir, report=args.report)
    print(f"  simulated device (FINN's DMA protocol, the accelerator's integer program), {r['images']} Fashion-MNIST "
          f"test images: accuracy {r['accuracy']:.2%} (torch {r['torch_accuracy']:.2%}); images whose integer "
          f"logit codes differ from torch's: {r['mismatches']}")
    if not student.trained:
        print("  (UNTRAINED reference student: the accuracy above means nothing; the FPS and resources are its "
              "hardware cost)")
    print(f"  estimated on {r['board']}: WinogradSRBS {r['fps_est']:,.0f} FPS, LUT {r['lut']:,.0f}, DSP "
          f"{r['dsp']:.0f} | stock FINN {r['baseline_fps_est']:,.0f} FPS, LUT {r['baseline_lut']:,.0f}, DSP "
          f"{r['baseline_dsp']:.0f}  ({r['seconds']:.0f} s)")
    if args.report:
        print(f"  -> {args.report}, {r['confusion_plot']}")
    return 0 if r["mismatches"] == 0 else 1


def run_config(args: argparse.Namespace):
    """The validated run config of a ``train-teacher`` or ``distill`` command line (nothing trained)."""
    # torch/brevitas load only for the commands that train: `counts`/`bits` stay numpy-only
    from winoforge.model.config import load_config
    from winoforge.model.recipes import DistillRunConfig, TeacherRunConfig

    if args.command == "train-teacher":
        return load_config(TeacherRunConfig, args.config, args.set)
    cfg = load_config(DistillRunConfig, args.config, args.set)
    if args.no_teacher:  # the same run minus everything that needs a teacher, in its own folder
        from dataclasses import replace

        from winoforge.model.recipes import without_teacher

        cfg = without_teacher(cfg, cfg.student.layer_bits or None)
        if not any(o.split("=", 1)[0].strip() == "out_dir" for o in args.set):
            cfg = replace(cfg, out_dir=cfg.out_dir.with_name(cfg.out_dir.name + "_no_teacher"))
    return cfg


def cmd_train_teacher(args: argparse.Namespace) -> int:
    from winoforge.model.recipes import train_teacher

    cfg = run_config(args)
    final = train_teacher(cfg)
    if final:
        print(f"teacher {cfg.arch}: test accuracy {final['acc']:.4f} -> {cfg.out_dir / 'model.safetensors'}")
    return 0


def cmd_distill(args: argparse.Namespace) -> int:
    from winoforge.model.recipes import distill, teacher_run_dir

    cfg = run_config(args)
    for i, teacher in enumerate(cfg.teachers):  # before any data is loaded (pretrained: names checked by sha256)
        teacher_run_dir(teacher, i)
    final = distill(cfg)
    if final:
        print(f"student: test accuracy {final['acc']:.4f} at SRBS density {final['density']:g}, "
              f"mean bits {final['mean_bits']:.3g} -> {cfg.out_dir / 'model.safetensors'}")
        if "peers" in final:
            print(f"peers: test accuracy {', '.join(f'{a:.4f}' for a in final['peers'])}; saved peer "
                  f"{final['peer']} (best training accuracy); group (mean logits) {final['ensemble_acc']:.4f}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from winoforge.hw.flow import export_run, golden_images, load_student, reference_student

    if args.pretrained is not None:
        from winoforge.model.pretrained import resolve

        args.run = str(resolve(args.pretrained, args.models_dir))
    if args.run is None and not 1 <= args.keep <= args.sub_row:
        raise ValueError(f"--keep {args.keep} is out of range for --sub-row {args.sub_row}; allowed: 1..{args.sub_row} "
                         "(non-zeros kept in every sub-row)")
    check = None
    if args.check_images:
        check = golden_images(args.check_images, args.data_dir)[0]
    if args.run:
        model, info = load_student(args.run)
        test_acc = info.get("test", {}).get("acc")
        source = f"trained student {args.run} (test accuracy {test_acc if test_acc is not None else float('nan'):.4f})"
        student = {"run": str(Path(args.run).resolve()), "torch_test_acc": test_acc, "density": info.get("density"),
                   "mean_bits": info.get("mean_bits"), "sha256": info.get("sha256")}
        if args.pretrained is not None:
            source = f"pretrained student {args.pretrained} ({source.split('(', 1)[1]}"
            student.update(run=None, pretrained=args.pretrained)
    else:
        calib = golden_images(256, args.data_dir, split="train")[0]
        model = reference_student(widths=args.widths, m=args.m, w_bits=args.w_bits,
                                  a_bits=args.a_bits, sub_row=args.sub_row, keep=args.keep, calibration=calib)
        source = (f"reference student (untrained weights, SRBS {args.keep}/{args.sub_row}, W{args.w_bits}A{args.a_bits}, "
                  f"F({args.m},3)): a hardware-cost reference, not an accuracy claim")
        student = {"run": None, "reference": source}
    report = export_run(model, args.out, check_images=check)
    # what was exported, for the package's provenance (winoforge build reads it next to the model)
    Path(args.out).with_suffix(".source.json").write_text(json.dumps(student, indent=2) + "\n")
    print(f"exported {source}\n  -> {args.out} ({report['nodes']} nodes)")
    if check is not None:
        print(f"  check on {report['images']} Fashion-MNIST test images: integer codes of "
              f"{', '.join(report['quant_layers'])} and of the logits equal to torch: {report['exact']}")
    if args.baseline_out:
        from winoforge.hw.baseline import direct_baseline

        export_run(direct_baseline(model), args.baseline_out, check_images=check)
        print(f"  stock-FINN baseline (direct 3x3 convolutions) -> {args.baseline_out}")
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from winoforge.hw.build import BuildStepError
    from winoforge.hw.flow import build_package, check_build_inputs, golden_images

    check_build_inputs(args.onnx, args.board, args.target_fps, args.baseline)  # before anything is loaded
    golden = golden_images(args.verify_images, args.data_dir)[1] if args.verify_images else None
    source = Path(args.onnx).with_suffix(".source.json")
    provenance = {"student": json.loads(source.read_text())} if source.is_file() else None
    try:
        manifest = build_package(args.onnx, args.name, board=args.board, target_fps=args.target_fps,
                                 out_root=args.out_root, work_root=args.work_root, golden=golden,
                                 codegen=args.codegen, baseline=args.baseline, provenance=provenance,
                                 rtl=args.rtl, open_rtl=not args.vendor_layers,
                                 runtime_weights=args.runtime_weights, mvau_wwidth_max=args.mvau_wwidth_max)
    except BuildStepError as err:
        print(f"winoforge build: {err}", file=sys.stderr)
        return 1
    est = json.loads((Path(args.out_root) / args.name / "reports" / "estimates.json").read_text())
    totals = est.get("totals", {})
    print(f"{args.name}: {manifest['flow']} on {manifest['board']} at {manifest['clock_mhz']:g} MHz -- "
          f"estimated {est['fps']:.0f} FPS (slowest: {est['slowest']}, {est['max_cycles']} cycles); "
          f"LUT {totals.get('LUT', 0):.0f}, BRAM18 {totals.get('BRAM_18K', 0):.0f}, DSP {totals.get('DSP', 0):.0f}"
          + (f", URAM {totals['URAM']:.0f}" if totals.get("URAM") else ""))
    if manifest.get("runtime_weights"):
        why = ("--runtime-weights" if manifest.get("all_runtime_weights") else
               "moved to UltraRAM: the BRAM does not hold them")
        print(f"  weights written by the runtime when the package loads ({why}): "
              + ", ".join(e["node"] for e in manifest["runtime_weights"]))
    if args.target_fps and est["fps"] < args.target_fps:
        print(f"  --target-fps {args.target_fps:g} not reached: the fastest folding of this model found gives "
              f"{est['fps']:.0f} FPS ({est['slowest']} needs {est['max_cycles']} cycles per frame)")
    print(f"  package: {Path(args.out_root) / args.name} ({len(manifest['files'])} files, sha256 in manifest.json)"
          + ("" if manifest["provenance"]["vivado"] else "; no Vivado here: no .bit/.hwh"))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Open a deployment package on a board or the simulated device: its golden self-test, then
    Fashion-MNIST test images (numpy only: this also runs in the board environment)."""
    from winoforge.runtime import Accelerator, BackendError, CorruptPackageError
    from winoforge.runtime.idx import fashion_mnist_arrays

    try:
        acc = Accelerator.load(args.package, backend=args.backend, batch_size=args.batch_size)
    except (CorruptPackageError, BackendError, ValueError) as err:
        print(f"winoforge run: {err}", file=sys.stderr)
        return 1
    m = acc.package.manifest
    fps = m.get("estimated_fps")
    print(f"{acc}\n  {m.get('flow')} build for {m.get('board')} at {m.get('clock_mhz')} MHz"
          + (f", estimated {fps:.0f} FPS on the FPGA" if fps else "")
          + ("" if m.get("bitfile") else "; no bitfile in the package (built without Vivado)"))
    status = 0
    try:
        test = acc.self_test()
        print(f"  self-test: {test['images']} golden images, bit-exact with the build's FINN execution: "
              f"{test['equal']}" + ("" if test["equal"] else f" ({test['mismatches']} values differ)"))
        status = 0 if test["equal"] else 1
    except BackendError as err:
        print(f"  self-test: not possible: {err}")
    if args.input:
        try:
            x = np.load(args.input, allow_pickle=False)
            if not isinstance(x, np.ndarray):
                x.close()
                raise ValueError("an .npz archive; save one array with np.save")
        except (ValueError, OSError, EOFError) as err:
            acc.close()
            print(f"winoforge run: error: argument --input: {args.input} is not a .npy array ({_one_line(err)})",
                  file=sys.stderr)
            return 2
        try:
            y = acc.execute(x)
            layout = getattr(acc, "last_layout", None)
        except ValueError as err:
            acc.close()
            print(f"winoforge run: {args.input}: {err}", file=sys.stderr)
            return 1
        out = Path(args.output or Path(args.input).with_suffix(".out.npy"))
        np.save(out, y)
        print(f"  {args.input}: {len(x)} inputs{f' ({layout})' if layout else ''} -> {out} ({y.dtype} {list(y.shape)}); classes "
              f"{np.argmax(y, axis=-1)[:16].tolist()}{' ...' if len(x) > 16 else ''}")
    if args.images and acc.input_shape == (28, 28, 1):
        try:
            images, labels = fashion_mnist_arrays(args.data_dir, "test")
        except FileNotFoundError as err:
            print(f"  Fashion-MNIST: skipped: {err}")
            return status
        x, y = images[: args.images, :, :, None], labels[: args.images]
        rate = acc.throughput(x)
        correct = int((acc.predict(x) == y).sum())
        print(f"  Fashion-MNIST test images: {correct}/{len(y)} correct ({correct / len(y):.2%}); "
              f"{rate['images_per_s']:.0f} images/s end to end on the {acc.backend} backend"
              + (" (the simulator's speed on this CPU, not the FPGA's)" if acc.backend in ("sim", "rtl") else ""))
    acc.close()
    return status


def cmd_models(args: argparse.Namespace) -> int:
    """The model registry (winoforge.model.pretrained): list the models, or import a finished run."""
    from winoforge.model.pretrained import add_model, list_models, models_dir

    if args.action == "add":
        if args.run_dir is None:
            raise ValueError("models add needs RUN_DIR (a finished train-teacher/distill run folder)")
        missing = [o for o, v in (("--name", args.name), ("--command", args.train_command),
                                  ("--trained-on", args.trained_on)) if not v]
        if missing:
            raise ValueError(f"models add needs {', '.join(missing)}")
        card = add_model(args.run_dir, args.name, args.train_command, args.trained_on, commit=args.commit,
                         root=args.models_dir, notes=args.notes)
        acc = card["test_accuracy"]
        target = card.get("target_accuracy")
        print(f"{card['name']} ({card['kind']}): test accuracy {acc if acc is not None else float('nan'):.4f}"
              + (f" (target {target:.3f}: {'met' if card['target_met'] else 'NOT met'})" if "target_met" in card else "")
              + f", {card['epochs']} epochs, sha256 {card['sha256'][:16]}... -> "
              f"{models_dir(args.models_dir) / card['weights']} + {card['name']}.json")
        return 0
    if args.run_dir is not None or any((args.name, args.train_command, args.trained_on, args.commit, args.notes)):
        raise ValueError("models list takes no RUN_DIR, --name, --command, --trained-on, --commit or --notes")
    print(f"models in {models_dir(args.models_dir)}:")
    rows = list_models(args.models_dir)
    width = max((len(row["name"]) for row in rows), default=0) + 2  # the names' column, whatever their length
    for row in rows:
        if not row["present"]:
            state = "not present (not trained/imported yet)"
        elif row.get("sha256_ok"):
            acc = row.get("test_accuracy")
            state = (f"test accuracy {acc:.4f}, " if acc is not None else "") + f"{row.get('epochs')} epochs, sha256 ok"
        else:
            state = f"REFUSED: {row['error']}"
        print(f"  {row['name']:<{width}}{row.get('kind', '?'):<9}{state}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="winoforge", description=__doc__)
    parser.add_argument("--traceback", action="store_true",
                        help="show the Python traceback of an error instead of its one-line message")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    ms = sorted(m for m, _ in SUPPORTED_TILES)
    count, positive = _int_at_least(0), _int_at_least(1)

    p = sub.add_parser("counts", help="multiplications/additions/BOPs: direct, Winograd, SRBS Winograd")
    p.add_argument("--network", choices=sorted(NETWORKS), default="vgg16-cifar10")
    p.add_argument("--m", type=int, choices=ms, default=2, help="Winograd output tile F(m x m, 3x3)")
    p.add_argument("--sub-row", type=positive, default=None)
    p.add_argument("--keep", type=positive, default=None)
    p.add_argument("--w-bits", type=positive, default=8)
    p.add_argument("--a-bits", type=positive, default=8)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_counts)

    p = sub.add_parser("bits", help="exact bit growth of integer Winograd convolution")
    p.add_argument("--in-bits", type=positive, required=True)
    p.add_argument("--weight-bits", type=positive, required=True)
    p.add_argument("--cin", type=positive, required=True,
                   help="input channels (SRBS layers too: one output can see every channel)")
    p.add_argument("--m", type=int, choices=ms, default=2)
    p.add_argument("--unsigned-input", action="store_true")
    p.set_defaults(func=cmd_bits)

    p = sub.add_parser("train-teacher", help="train an FP32 teacher (resumes a killed run)")
    p.add_argument("--config", type=_toml_file, default=None, help="TOML file (configs/...)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set optim.epochs=2 (repeatable)")
    p.set_defaults(func=cmd_train_teacher)

    p = sub.add_parser("distill", help="train a quantized (or fp32) Winograd-SRBS student: KD, gradual pruning, "
                       "mixed precision, online peers")
    p.add_argument("--config", type=_toml_file, default=None, help="TOML file (configs/...)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value")
    p.add_argument("--no-teacher", action="store_true",
                   help="the same run without its teachers (no KD, hints, initialisation from a teacher or width "
                        "search) -> <out_dir>_no_teacher unless --set out_dir=... is given")
    p.set_defaults(func=cmd_distill)

    p = sub.add_parser("export", help="export a student to QONNX and check it against torch on real images")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--run", type=_existing_dir, default=None, help="a finished `winoforge distill` run folder; "
                        "without it (and --pretrained): the reference (untrained) student described by the options "
                        "below")
    source.add_argument("--pretrained", type=_model_name, default=None, help="a shipped student by name "
                        "(`winoforge models list`), e.g. fmnist-vgg-pynqz2-srbs75; its sha256 is checked")
    p.add_argument("--models-dir", type=_existing_dir, default=None, help="the models folder (default: models/)")
    p.add_argument("--out", type=_output_file, default="build/student/model.onnx")
    p.add_argument("--baseline-out", type=_output_file, default=None,
                   help="also export the same network with direct 3x3 convolutions (stock-FINN baseline)")
    p.add_argument("--check-images", type=count, default=100, help="Fashion-MNIST test images for the check (0: none)")
    p.add_argument("--data-dir", type=_existing_dir, default=None)
    p.add_argument("--widths", type=_widths, default=None, help="reference student: e.g. 32,32,M,64,64,M")
    p.add_argument("--m", type=int, choices=[2, 4], default=2)
    p.add_argument("--w-bits", type=positive, default=4)
    p.add_argument("--a-bits", type=positive, default=4)
    p.add_argument("--sub-row", type=positive, default=8)
    p.add_argument("--keep", type=positive, default=2)
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("build", help="FINN build + estimates of an exported model -> bitstreams/<name>/")
    p.add_argument("--onnx", type=_readable_file, default="build/student/model.onnx")
    p.add_argument("--name", type=_package_name, default="student")
    p.add_argument("--board", type=str, default="pynq-z2", help="pynq-z2, zcu104, ultra96-v2")
    p.add_argument("--target-fps", type=_positive_number, default=None, help="folding target (frames per second)")
    p.add_argument("--baseline", action="store_true", help="stock FINN steps (for a direct-convolution export)")
    p.add_argument("--codegen", action="store_true", help="also run FINN's step_hw_codegen")
    p.add_argument("--rtl", action="store_true", help="also stitch the RTL, size its FIFOs in Verilator on the "
                   "golden images and put it into the package (rtl/) for `winoforge run --backend rtl`")
    p.add_argument("--vendor-layers", action="store_true",
                   help="pooling, global pooling and the classifier as FINN's HLS/DSP layers (the Vivado + Vitis "
                        "HLS path) instead of our open RTL layers; not with --rtl")
    p.add_argument("--runtime-weights", action="store_true",
                   help="the Winograd layers keep their weights in RAMs the runtime writes through a weight DMA "
                        "each (new weights without a new bitstream: Accelerator.load_weights)")
    p.add_argument("--mvau-wwidth-max", type=positive, default=None,
                   help="FINN's folding cap on an MVAU's SIMD x weight bits (default: FINN's 36); the open-RTL "
                        "MVAUs embed their weights, so a higher cap (the networks benchmark: 1024) lets "
                        "projections read more channels a cycle instead of adding PE lanes")
    p.add_argument("--verify-images", type=count, default=1,
                   help="golden images executed after every step (0: no verification)")
    p.add_argument("--out-root", type=_output_dir, default="bitstreams")
    p.add_argument("--work-root", type=_output_dir, default="build/finn", help="FINN work folders: <work-root>/<name>/")
    p.add_argument("--data-dir", type=_existing_dir, default=None)
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("run", help="run a deployment package on a PYNQ board or the bit-exact simulated device")
    p.add_argument("package", type=_existing_dir, help="a package folder (bitstreams/<name>/)")
    p.add_argument("--backend", choices=["auto", "sim", "pynq", "rtl"], default="auto",
                   help="auto: the board when the package has a bitfile and a device is present, else sim; "
                        "rtl: the package's stitched RTL under Verilator (host environment)")
    p.add_argument("--images", type=count, default=1000, help="Fashion-MNIST test images to classify (0: none)")
    p.add_argument("--input", type=_readable_file, default=None,
                   help="a .npy of raw inputs (e.g. uint8 images, NHWC (N, 28, 28, 1) or torch's NCHW (N, 1, 28, 28))")
    p.add_argument("--output", type=_output_file, default=None, help="where to save their outputs (default <input>.out.npy)")
    p.add_argument("--batch-size", type=positive, default=100, help="images per DMA transfer")
    p.add_argument("--data-dir", type=_existing_dir, default=None)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("demo", help="the main demonstration: the Winograd/SRBS core, then the trained PYNQ-Z2 "
                       "student exported, built (ours and stock FINN) and run on the simulated device")
    p.add_argument("--seed", type=count, default=0)
    p.add_argument("--core-only", action="store_true", help="only the numpy core (no torch, no FINN)")
    p.add_argument("--pretrained", type=_model_name, default="fmnist-vgg-pynqz2-srbs75",
                   help="the student (model registry, `winoforge models list`)")
    p.add_argument("--or-reference", type=_widths, default=None, metavar="WIDTHS",
                   help="if the --pretrained model is not in the models folder, run the UNTRAINED reference "
                        "student of these VGG widths instead (saying so) on at most "
                        f"{REFERENCE_IMAGES} images")
    p.add_argument("--widths", type=_widths, default=None, help="instead: the UNTRAINED reference student of "
                   "these VGG widths (e.g. 32,32,M,64,64,M,128,128,M), a hardware-cost reference only")
    p.add_argument("--models-dir", type=_existing_dir, default=None, help="the models folder (default: models/)")
    p.add_argument("--images", type=_int_at_least(1), default=10000, help="Fashion-MNIST test images run on the "
                   "simulated device (at most 10000)")
    p.add_argument("--board", type=str, default="pynq-z2", help="pynq-z2, zcu104, ultra96-v2")
    p.add_argument("--report", type=_output_file, default="benchmarks/results/demo_report.json",
                   help="the report (JSON); the confusion-matrix plot goes beside it")
    p.add_argument("--work", type=_output_dir, default="build/demo")
    p.add_argument("--target-fps", type=_positive_number, default=2500, help="folding target of both builds")
    p.add_argument("--data-dir", type=_existing_dir, default=None)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("models", help="the model registry: `models list`, or `models add RUN_DIR --name ...` to "
                       "import a finished run into models/ with its model card")
    p.add_argument("action", choices=["list", "add"])
    p.add_argument("run_dir", nargs="?", type=_existing_dir, default=None, help="add: a finished run folder")
    p.add_argument("--name", type=_model_name, default=None, help="add: the registry name, e.g. fmnist-vgg-teacher")
    p.add_argument("--command", dest="train_command", type=str, default=None,
                   help="add: the command line that reproduces the run")
    p.add_argument("--trained-on", type=str, default=None, help="add: where and on what it trained")
    p.add_argument("--commit", type=_git_commit, default=None,
                   help="add: the git commit it was trained at (default: HEAD, recorded as the import commit)")
    p.add_argument("--notes", type=str, default=None, help="add: free text for the card (e.g. what was tried)")
    p.add_argument("--models-dir", type=_output_dir, default=None, help="the models folder (default: models/)")
    p.set_defaults(func=cmd_models)
    return parser


#: Errors that are the user's input or environment, not a bug in winoforge: one line, no traceback
#: (``--traceback`` shows it anyway).  ValueError covers the library's validation (config fields,
#: packages, datatypes); OSError files and folders.
USER_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError)


def main(argv: Sequence[str] | None = None) -> int:
    from winoforge._warnings import quiet_third_party

    quiet_third_party()
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except USER_ERRORS as err:
        if args.traceback:
            raise
        print(f"winoforge {args.command}: error: {_one_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"winoforge {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
