"""The table of docs/models.md, "Quantized and half-precision models": SDE
rates per layer and per bit of MobileNetV2 in float32 (fp32 faults and the
int8 emulation), float16 (native_fp16) and INT8 (QDQ and QOperator,
native_int8), from the results folders of

  faultsweep run scenarios/mobilenet_v2_formats.yml  --out DIR/formats
  faultsweep run scenarios/mobilenet_v2_fp16.yml     --out DIR/fp16
  faultsweep run scenarios/mobilenet_v2_int8_qdq.yml --out DIR/qdq
  faultsweep run scenarios/mobilenet_v2_int8_qop.yml --out DIR/qop

Layers are matched by the float Conv each quantized node stands for: a
QLinearConv is named CONV_quant by onnxruntime's quantizer; a QDQ model's
QuantizeLinear of a Conv's output is named CONV_output_0_QuantizeLinear
or, where a ReLU6 follows, under the Clip's name (X.2/Clip for the Conv
X.0/Conv); its other QuantizeLinear nodes, of the input and of Add
outputs, have no Conv and are left out of the layer table.

Run: python3 scripts/compare_quantized.py DIR
"""

import csv
import os
import sys


def rows(folder, grouping):
    with open(os.path.join(folder, "summary.csv")) as f:
        for r in csv.DictReader(f):
            if r["grouping"] == grouping:
                yield r


def rate(r):
    if r is None:
        return "-"
    pct = lambda k: 100 * float(r[k])
    return f"{pct('sde_rate'):.1f} [{pct('sde_low'):.1f}, {pct('sde_high'):.1f}] ({r['n']})"


def wilson(k, n, z=1.959964):
    """The 95% Wilson interval of k in n, in percent, as the summaries'."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5) / (1 + z * z / n)
    return 100 * max(0.0, centre - half), 100 * min(1.0, centre + half)


def conv_of(layer):
    """The float Conv a node of the fp16 or quantized models stands for.
    (A QDQ model's Conv followed by ReLU6 writes its QuantizeLinear under
    the Clip's name, X.2/Clip, the Clip folded into the quantization.)"""
    for suffix in ["_quant", "_output_0_QuantizeLinear"]:
        if layer.endswith(suffix):
            layer = layer[: -len(suffix)]
    if layer.endswith(".2/Clip"):
        layer = layer[: -len(".2/Clip")] + ".0/Conv"
    return layer


def main():
    base = sys.argv[1]
    # The float campaign sweeps dtype: its layer table mixes both formats,
    # so the layer rates come from its injections.
    per_layer = {}
    with open(os.path.join(base, "formats", "injections.csv")) as f:
        for r in csv.DictReader(f):
            c = per_layer.setdefault((r["dtype"], r["layer"]), [0, 0])
            c[0] += 1
            c[1] += r["outcome"] == "sde"
    columns = {
        "fp16 (native_fp16)": {conv_of(r["group"]): r for r in rows(os.path.join(base, "fp16"), "layer")},
        "INT8 QDQ (native_int8)": {conv_of(r["group"]): r for r in rows(os.path.join(base, "qdq"), "layer")},
        "INT8 QOperator (native_int8)": {conv_of(r["group"]): r for r in rows(os.path.join(base, "qop"), "layer")},
    }
    convs = [r["group"] for r in rows(os.path.join(base, "fp16"), "layer")]
    print("| Conv layer | fp32 | int8 emulation | " + " | ".join(columns) + " |")
    print("| --- | --- | --- | " + " | ".join("---" for _ in columns) + " |")
    for conv in convs:
        short = conv.replace("/features/features.", "f.").replace("/conv/conv.", "/c.")
        float_cells = []
        for dtype in ["fp32", "int8"]:
            n, sde = per_layer.get((dtype, conv), [0, 0])
            lo, hi = wilson(sde, n) if n else (0, 0)
            float_cells.append(f"{100 * sde / n:.1f} [{lo:.1f}, {hi:.1f}] ({n})" if n else "-")
        cells = [rate(c.get(conv)) for c in columns.values()]
        print(f"| `{short}` | " + " | ".join(float_cells + cells) + " |")
    print()
    print("| bit | int8 emulation | INT8 QDQ (native_int8) | INT8 QOperator (native_int8) |")
    print("| --- | --- | --- | --- |")
    bits = {
        "emulation": {r["group"]: r for r in rows(os.path.join(base, "formats"), "bit:int8")},
        "qdq": {r["group"]: r for r in rows(os.path.join(base, "qdq"), "bit:native_int8")},
        "qop": {r["group"]: r for r in rows(os.path.join(base, "qop"), "bit:native_int8")},
    }
    for bit in range(8):
        print(f"| {bit} | " + " | ".join(rate(b.get(str(bit))) for b in bits.values()) + " |")
    print()
    print("| campaign | SDE | DUE | masked |")
    print("| --- | --- | --- | --- |")
    for name in ["formats", "fp16", "qdq", "qop"]:
        for r in rows(os.path.join(base, name), "dtype" if name == "formats" else "overall"):
            pct = lambda k: f"{100 * float(r[k + '_rate']):.2f}% [{100 * float(r[k + '_low']):.2f}, {100 * float(r[k + '_high']):.2f}]"
            label = f"{name} {r['group']}" if name == "formats" else name
            print(f"| {label} | {pct('sde')} | {pct('due')} | {pct('masked')} |")


if __name__ == "__main__":
    main()
