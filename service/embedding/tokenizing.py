"""Text to token ids for the exported models, without torch or transformers: each model's own tokenizer,
saved beside it at export time (export.py) as the files one of these classes reads.

- MiniLM (WordPiece): Hugging Face `tokenizers`, from the model's own tokenizer.json.
- SentencePiece unigram models (multilingual-e5, 250,002 pieces): Google's `sentencepiece`, from a
  tokenizer.model built from the vocabulary. `tokenizers` holds the same vocabulary in a trie of hash maps
  that costs 282 MB of RSS; sentencepiece's double-array trie costs 38 MB and encodes ~7× faster. Measured
  on the 19,387 plots of the reference and the German, French and English dev sets: the same ids for all
  but 2, which end in a zero-width space that sentencepiece drops as it drops any trailing whitespace.
  Literal markers such as "<s>" in a text are words here, not the model's control tokens."""
from __future__ import annotations

import json
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path

TOKENIZER_JSON = "tokenizer.json"
SENTENCEPIECE_FILE, NORMALISATION_FILE = "tokenizer.model", "normalisation.json"
TOKENIZER_FILES = (TOKENIZER_JSON, SENTENCEPIECE_FILE, NORMALISATION_FILE)


class TextTokenizer(ABC):
    pad_id: int

    @abstractmethod
    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Ids with the model's start and end markers, truncated to its limit, unpadded."""


class HuggingFaceTokenizer(TextTokenizer):
    def __init__(self, tokenizer_json: str):
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_str(tokenizer_json)
        self.pad_id = (self._tokenizer.padding or {}).get("pad_id", 0)
        self._tokenizer.no_padding()

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        return [e.ids for e in self._tokenizer.encode_batch(list(texts))]


class SentencePieceTokenizer(TextTokenizer):
    """The model's normalisation (a per-character table, then NFKC) is done here, sentencepiece then adds
    the word-start marks, collapses runs of spaces and finds the best pieces."""

    def __init__(self, model: bytes, normalisation: Mapping, max_length: int):
        import sentencepiece

        self._pieces = sentencepiece.SentencePieceProcessor(model_proto=model)
        self._table = {int(cp): out for cp, out in normalisation["characters"].items()}
        self.bos_id, self.eos_id, self.pad_id = (self._pieces.bos_id(), self._pieces.eos_id(),
                                                 self._pieces.pad_id())
        self.max_length = max_length

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        normalised = [unicodedata.normalize("NFKC", text.translate(self._table)) for text in texts]
        return [[self.bos_id, *ids[:self.max_length - 2], self.eos_id]
                for ids in self._pieces.encode(normalised)]


def tokenizer_from(files: Mapping[str, bytes], max_length: int) -> TextTokenizer:
    """The tokenizer the exported files describe (by file name)."""
    if SENTENCEPIECE_FILE in files:
        return SentencePieceTokenizer(files[SENTENCEPIECE_FILE], json.loads(files[NORMALISATION_FILE]), max_length)
    return HuggingFaceTokenizer(files[TOKENIZER_JSON].decode("utf-8"))


def load_tokenizer(folder: Path, max_length: int) -> TextTokenizer:
    files = {name: (folder / name).read_bytes() for name in TOKENIZER_FILES if (folder / name).is_file()}
    return tokenizer_from(files, max_length)
