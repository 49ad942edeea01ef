#!/usr/bin/env python3
"""ONNX's operator conformance cases (`onnx.backend.test.case.node`, the
suite ONNX backends report against) as one compact fixture for the Rust
test `tests/conformance.rs`: tests/fixtures/conformance/cases.bin.zst.

Every case of the pinned onnx (1.23.2: 1,884 cases, opsets up to 28) is
written with its model, its inputs and expected outputs as serialized
TensorProtos, and its tolerances; a case whose values faultsweep cannot
hold is written with the reason only:
- a graph input or output that is not a tensor (sequence, optional, map);
- an element type libtorch does not hold as a full type (strings, float8,
  float4, float6, int4, int2, uint16/32/64, complex);
- a node of a domain other than the default (ai.onnx.ml, preview).

Format (little-endian), zstd-compressed: b"FSCONF1\\n", then per case:
name, the op it tests, reason (empty: runnable), rtol (f64), atol (f64), model, then the
number of data sets and per set its inputs and its outputs, each a count
and that many byte strings. A string or byte string is a u32 length and
its bytes.

    python3 scripts/make_conformance.py
"""

import struct
import sys
import warnings
from pathlib import Path

import numpy as np
import onnx
import onnx.backend.test.case.node as node_cases
import zstandard
from onnx import TensorProto, numpy_helper

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "conformance"
HELD = {
    TensorProto.FLOAT,
    TensorProto.UINT8,
    TensorProto.INT8,
    TensorProto.INT16,
    TensorProto.INT32,
    TensorProto.INT64,
    TensorProto.BOOL,
    TensorProto.FLOAT16,
    TensorProto.DOUBLE,
    TensorProto.BFLOAT16,
}
DOMAINS = {"", "ai.onnx"}


def value_reason(vi):
    """Why a graph input or output cannot be held, or None."""
    kind = vi.type.WhichOneof("value")
    if kind != "tensor_type":
        return f"{kind.replace('_type', '')} values"
    elem = vi.type.tensor_type.elem_type
    if elem not in HELD:
        return f"element type {TensorProto.DataType.Name(elem).lower()}"
    return None


def reason(case):
    graph = case.model.graph
    for n in graph.node:
        if n.domain not in DOMAINS:
            return f"domain {n.domain}"
    for vi in list(graph.input) + list(graph.output):
        r = value_reason(vi)
        if r:
            return r
    return None


def main_op(case):
    """The op a case tests: the node op that starts its name
    (`test_<op>_...`), else its first node's."""
    rest = case.name[len("test_"):].replace("_", "").lower()
    ops = [n.op_type for n in case.model.graph.node]
    named = [o for o in set(ops) if rest.startswith(o.lower())]
    return max(named, key=len) if named else (ops[0] if ops else "?")


def blob(b):
    return struct.pack("<I", len(b)) + b


def tensor(value, name):
    if isinstance(value, TensorProto):
        t = TensorProto()
        t.CopyFrom(value)
        t.name = name
        return t.SerializeToString()
    return numpy_helper.from_array(np.asarray(value), name).SerializeToString()


def encode(case):
    why = reason(case)
    out = blob(case.name.encode()) + blob(main_op(case).encode())
    out += blob((why or "").encode())
    out += struct.pack("<dd", case.rtol, case.atol)
    if why:
        return out + blob(b"") + struct.pack("<I", 0)
    graph = case.model.graph
    out += blob(case.model.SerializeToString())
    out += struct.pack("<I", len(case.data_sets))
    for inputs, outputs in case.data_sets:
        for values, infos in ((inputs, graph.input), (outputs, graph.output)):
            out += struct.pack("<I", len(values))
            for v, info in zip(values, infos):
                out += blob(tensor(v, info.name))
    return out


def main():
    warnings.filterwarnings("ignore")
    np.random.seed(0)
    cases = sorted(node_cases.collect_testcases(None), key=lambda c: c.name)
    body = b"FSCONF1\n" + b"".join(encode(c) for c in cases)
    OUT.mkdir(parents=True, exist_ok=True)
    data = zstandard.ZstdCompressor(level=19).compress(body)
    (OUT / "cases.bin.zst").write_bytes(data)
    skipped = sum(1 for c in cases if reason(c))
    print(
        f"onnx {onnx.__version__}: {len(cases)} cases, {skipped} left out, "
        f"{len(data)} bytes",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
