#!/usr/bin/env python3
"""A BERT-style encoder from `transformers` (BertForSequenceClassification,
random weights: 2 layers, hidden 32, 4 heads, vocabulary 120, 3 classes)
exported twice with a dynamic batch: by the TorchScript exporter (opset 17,
`bert_tiny_ts17.onnx`) and by the dynamo exporter (opset 18,
`bert_tiny_dyn18.onnx`, one file). Both compute their reshape targets from
the input's shape, and the dynamo export merges the batch with the heads
(`[N*4, 12, 8]`) inside attention. A third export takes all three of
BERT's inputs (`bert_tiny_masked_ts17.onnx`: input_ids, attention_mask,
token_type_ids, int64). Writes them to tests/fixtures/models, and to
tests/fixtures/data 32 sequences of 12 token ids (int64), labels, the
three inputs with padded sequences (`bert_inputs.npz`, labels in its
array `labels`) and onnxruntime's logits of each export.

    python3 scripts/make_bert_fixture.py
"""

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from transformers import BertConfig, BertForSequenceClassification

ROOT = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
torch.manual_seed(0)
config = BertConfig(
    vocab_size=120,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=4,
    intermediate_size=64,
    max_position_embeddings=32,
    num_labels=3,
)
model = BertForSequenceClassification(config).eval()
rng = np.random.default_rng(11)
tokens = rng.integers(0, 120, (32, 12)).astype(np.int64)
example = (torch.from_numpy(tokens[:2]),)
names = dict(input_names=["input_ids"], output_names=["logits"])

path = ROOT / "models" / "bert_tiny_ts17.onnx"
torch.onnx.export(
    model, example, path, dynamo=False, opset_version=17,
    dynamic_axes={"input_ids": {0: "batch"}, "logits": {0: "batch"}}, **names,
)
exports = [path]

path = ROOT / "models" / "bert_tiny_dyn18.onnx"
program = torch.onnx.export(
    model, example, dynamo=True, opset_version=18,
    dynamic_shapes=({0: torch.export.Dim("batch")},), **names,
)
program.save(str(path), external_data=False)
exports.append(path)

# All three inputs: sequences of 4 to 12 tokens, padded with id 0.
lengths = rng.integers(4, 13, 32)
mask = (np.arange(12)[None, :] < lengths[:, None]).astype(np.int64)
feeds = {
    "input_ids": tokens * mask,
    "attention_mask": mask,
    "token_type_ids": (np.arange(12)[None, :] >= lengths[:, None] // 2).astype(np.int64) * mask,
}
masked_path = ROOT / "models" / "bert_tiny_masked_ts17.onnx"
torch.onnx.export(
    model, tuple(torch.from_numpy(feeds[k][:2]) for k in feeds), masked_path, dynamo=False,
    opset_version=17, input_names=list(feeds), output_names=["logits"],
    dynamic_axes={**{k: {0: "batch"} for k in feeds}, "logits": {0: "batch"}},
)

so = ort.SessionOptions()
so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
with torch.no_grad():
    reference = model(torch.from_numpy(tokens)).logits.numpy()
for path in exports:
    onnx.checker.check_model(onnx.load(path))
    session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    (logits,) = session.run(None, {"input_ids": tokens})
    print(path.name, "max |onnxruntime - torch|", np.abs(logits - reference).max())
    np.save(ROOT / "data" / f"{path.stem}_logits.npy", logits)
session = ort.InferenceSession(str(masked_path), so, providers=["CPUExecutionProvider"])
(masked,) = session.run(None, feeds)
with torch.no_grad():
    want = model(**{k: torch.from_numpy(v) for k, v in feeds.items()}).logits.numpy()
print(masked_path.name, "max |onnxruntime - torch|", np.abs(masked - want).max())
np.save(ROOT / "data" / f"{masked_path.stem}_logits.npy", masked)
np.savez(ROOT / "data" / "bert_inputs.npz", **feeds, labels=masked.argmax(1).astype(np.int64))

labels = reference.argmax(1).astype(np.int64)
labels[::4] = (labels[::4] + 1) % 3  # some wrong, so accuracy is not trivial
np.save(ROOT / "data" / "bert_tokens.npy", tokens)
np.save(ROOT / "data" / "bert_labels.npy", labels)
