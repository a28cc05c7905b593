"""One WinogradSRBS layer, dense against SRBS 2/8, over every folding: the speed-up at equal LUT.

The layer is fmnist-vgg's second convolution (32 -> 32 channels on 28x28, F(2x2,3x3), padding 1;
PYNQ-Z2's xc7z020), unsigned activations and signed Winograd-domain weights, multipliers in LUTs (``res_type="lut"``,
as the builds set it), its output as wide
as :func:`winoforge.winograd.bit_growth` says for any weights (a build narrows it to its
weights' range, e.g. INT14 for fmnist-vgg's reference weights against 17 here).  For every power-of-two cycle target from 2^10 to 2^19 (and 1.5x those),
:func:`winoforge.hw.srbs_folding.choose_folding` picks the cheapest folding of the dense layer
(``SubRow = 0``) and of the SRBS layer (``SubRow = 8, Keep = 2``: density 1/4; and ``SubRow = 4,
Keep = 1``, the same density with half the index-mux inputs, ``subrow4_keep1_W4A4``) and records its
expected cycles and estimated LUT (``estimate_resources``, calibrated within -12..+17 % of Yosys,
``benchmarks/rtl_calibration.py``).  Then, for every dense folding, the fastest SRBS folding with
no more LUT: the speed-up at equal LUT.  Also the LUT ratio at equal multipliers (SRBS at 4x the
dense speed), where a continuous folding would land between the discrete steps.  W4A4 (the
networks' widths) and W8A8.  And the same layer in F(4x4,3x3) at W4A4 (``f4x4_W4A4``): its
t^2 = 36 positions fold in finer steps (4/3x, 1.5x), against its own dense layer and against the
F(2x2,3x3) dense one.  Estimates only, no synthesis: seconds.

Writes ``benchmarks/results/srbs_equal_lut.json``.  Run: ``python benchmarks/srbs_equal_lut.py``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
PART = "xc7z020clg400-1"
TARGETS = sorted({2**k for k in range(10, 20)} | {3 * 2 ** (k - 1) for k in range(10, 19)})
#: F(4x4,3x3) folds its t^2 = 36 positions by 1, 2, 3, 4, 6, 9, 12, 18, 36: cycle targets 2^(k/4) find its
#: 4/3x and 1.5x steps too
FINE_TARGETS = sorted({int(2 ** (k / 4)) for k in range(36, 80)})


def _layer(weight_bits: int, act_bits: int, sub_row: int, keep: int, m: int = 2):
    from qonnx.core.datatype import DataType

    from winoforge.hw.srbs_params import WinogradSRBSParams
    from winoforge.winograd import WinogradSpec, bit_growth

    acc = bit_growth(act_bits, weight_bits, 32, WinogradSpec(m), in_signed=False).output_bits
    return WinogradSRBSParams(m=m, ifm_channels=32, ofm_channels=32, ifm_dim=(28, 28),
                              input_datatype=DataType[f"UINT{act_bits}"], weight_datatype=DataType[f"INT{weight_bits}"],
                              output_datatype=DataType[f"INT{acc}"], padding=1, sub_row=sub_row, keep=keep,
                              simd=max(sub_row, 1), res_type="lut")


def foldings(params, targets=TARGETS) -> list[dict]:
    from winoforge.hw.srbs_folding import choose_folding

    seen = {}
    for target in targets:
        try:
            f = choose_folding(params, target, PART)
        except ValueError:
            continue
        seen[f.pos, f.pe, f.simd] = {"cycles": int(f.exp_cycles()), "lut": int(f.estimate_resources(PART).lut),
                                     "multipliers": int(f.multipliers), "pos": f.pos, "pe": f.pe, "simd": f.simd}
    return sorted(seen.values(), key=lambda p: p["cycles"])


def _equal_lut(dense: list[dict], srbs: list[dict]) -> list[dict]:
    """For every dense folding, the fastest SRBS folding with no more LUT."""
    out = []
    for d in dense:
        best = min((s for s in srbs if s["lut"] <= d["lut"]), key=lambda s: s["cycles"], default=None)
        if best is not None:
            out.append({"dense_cycles": d["cycles"], "lut_budget": d["lut"], "srbs_cycles": best["cycles"],
                        "srbs_lut": best["lut"], "speedup": d["cycles"] / best["cycles"]})
    return out


def main() -> int:
    t0 = time.perf_counter()
    out = {"layer": "32 -> 32, 28x28, F(2x2,3x3), padding 1; SRBS SubRow 8 Keep 2 (density 1/4)", "part": PART,
           "widths": {}}
    for wb, ab in ((4, 4), (8, 8)):
        dense, srbs = foldings(_layer(wb, ab, 0, 0)), foldings(_layer(wb, ab, 8, 2))
        equal_lut = _equal_lut(dense, srbs)
        equal_mult = []
        for d in dense:
            s = next((s for s in srbs if s["multipliers"] == d["multipliers"] and s["cycles"] * 4 == d["cycles"]), None)
            if s is not None:
                equal_mult.append({"multipliers": d["multipliers"], "dense_lut": d["lut"], "srbs_lut": s["lut"],
                                   "lut_ratio_at_4x_speed": s["lut"] / d["lut"]})
        key = f"W{wb}A{ab}"
        out["widths"][key] = {"dense": dense, "srbs": srbs, "equal_lut": equal_lut, "equal_multipliers": equal_mult}
        ups = sorted({round(e["speedup"], 3) for e in equal_lut})
        ratios = [round(e["lut_ratio_at_4x_speed"], 2) for e in equal_mult]
        print(f"{key}: speed-up at equal LUT over {len(equal_lut)} budgets: {ups}; "
              f"LUT ratio at equal multipliers (4x speed): {ratios}")
    # the same density with a shorter sub-row (SubRow 4, Keep 1): each index mux selects 1 of 4, not
    # 1 of 8 -- half the mux LUTs; does that reach 3x at equal LUT?
    dense = out["widths"]["W4A4"]["dense"]
    short = foldings(_layer(4, 4, 4, 1))
    ratios = [{"multipliers": d["multipliers"], "dense_lut": d["lut"], "srbs_lut": s["lut"],
               "lut_ratio_at_4x_speed": s["lut"] / d["lut"]}
              for d in dense for s in short if s["multipliers"] == d["multipliers"] and s["cycles"] * 4 == d["cycles"]]
    out["subrow4_keep1_W4A4"] = {"srbs": short, "equal_lut": _equal_lut(dense, short), "equal_multipliers": ratios}
    rec = out["subrow4_keep1_W4A4"]
    print(f"W4A4 SubRow 4 Keep 1: speed-up at equal LUT {sorted({round(e['speedup'], 3) for e in rec['equal_lut']})}; "
          f"LUT ratio at equal multipliers (4x speed): {[round(r['lut_ratio_at_4x_speed'], 2) for r in ratios]}")
    # F(4x4,3x3): 36 positions fold in steps of 4/3x and 1.5x as well -- does a finer step reach 3x?
    f43 = {"dense": foldings(_layer(4, 4, 0, 0, m=4), FINE_TARGETS),
           "srbs": foldings(_layer(4, 4, 8, 2, m=4), FINE_TARGETS)}
    f23_dense = foldings(_layer(4, 4, 0, 0), FINE_TARGETS)
    f43["equal_lut"] = _equal_lut(f43["dense"], f43["srbs"])
    f43["equal_lut_vs_f23_dense"] = _equal_lut(f23_dense, f43["srbs"])
    out["f4x4_W4A4"] = f43
    for key, rec in (("F(4,3) SRBS vs F(4,3) dense", f43["equal_lut"]),
                     ("F(4,3) SRBS vs F(2,3) dense", f43["equal_lut_vs_f23_dense"])):
        print(f"W4A4 {key}: speed-up at equal LUT, best {max(e['speedup'] for e in rec):.2f}x over {len(rec)} budgets")
    out["seconds"] = time.perf_counter() - t0
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / "srbs_equal_lut.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(f"-> {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
