"""The catalogue at a glance: of a finished job's output, how many rows each genre was given, how sure the answers
were (the score of each answer's first genre, in tenths), and the rows the service was least sure of, to review
first. Gathered from the output itself as it is written (ChunkStore.assemble's tap), so it tells what the file
that is downloaded holds."""
from __future__ import annotations

import heapq
import json
from collections import Counter

import pyarrow as pa

BINS = 10  # the confidence chart's bars: 0-0.1, 0.1-0.2, … 0.9-1
LEAST_SURE = 20  # the rows listed to review first
TEXT_CHARS = 300  # of a listed row's text


class Glance:
    def __init__(self, text_column: str, least_sure: int = LEAST_SURE):
        self.text_column = text_column  # its name in the output
        self.least_sure = least_sure
        self.genres: Counter[str] = Counter()
        self.confidence = [0] * BINS
        self._least: list[tuple[float, int, str, list[str]]] = []  # a max-heap by (score, row), negated

    def add(self, rows: list[int], table: pa.Table) -> None:
        texts = table.column(self.text_column).to_pylist()
        for row, text, genres, scores in zip(rows, texts, table.column("genres").to_pylist(),
                                             table.column("scores").to_pylist()):
            genres = genres or []
            self.genres.update(genres)
            top = max(json.loads(scores).values(), default=0.0) if scores else 0.0
            self.confidence[min(int(top * BINS), BINS - 1)] += 1
            entry = (-top, -row, str(text)[:TEXT_CHARS], genres)
            if len(self._least) < self.least_sure:
                heapq.heappush(self._least, entry)
            elif entry > self._least[0]:  # less sure than the surest kept (or as sure, and earlier in the file)
                heapq.heapreplace(self._least, entry)

    def result(self) -> dict:
        least = sorted(self._least, reverse=True)
        return {"genres": dict(sorted(self.genres.items(), key=lambda kv: (-kv[1], kv[0]))),
                "confidence": [{"from": i / BINS, "to": (i + 1) / BINS, "rows": n}
                               for i, n in enumerate(self.confidence)],
                "least_sure": [{"row": -row, "text": text, "genres": genres, "score": round(-top, 4)}
                               for top, row, text, genres in least]}
