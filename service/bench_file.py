"""`make bench-file`: classify-file on a large catalogue, measured against /classify/batch in the same run.

The catalogue is the dev plots repeated to the wanted size. The local engine's rate is compared with the
served batch rate per description; its RSS is read when 10k rows are done and at the end (it must stay
flat); the Ray engine runs on a smaller file, with the actor count it used.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from service.bench import _batch_per_s, _descriptions, _rss_mb, running_service, write_catalogue
from service.settings import Settings

CHUNK_ROWS = 2000


def _classify_file(source: Path, output: Path, settings: Settings, *extra: str,
                   rss_at_rows: tuple[int, ...] = ()) -> dict:
    """Run the command, reading its RSS when the chunks done first cover each of `rss_at_rows`."""
    env = os.environ | {"MOVIEGENRE_INDEX_DIR": str(settings.index.dir), "LLM_BACKEND": "none"}
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "service.cli", "classify-file", str(source), "-o", str(output),
                                "--chunk-rows", str(CHUNK_ROWS), "--quiet", *extra], env=env,
                               stdout=subprocess.PIPE, text=True)
    partial = output.with_name(output.name + ".partial")
    rss, wanted = {}, list(rss_at_rows)
    while process.poll() is None:
        done = len(list(partial.glob("chunk-*.parquet"))) * CHUNK_ROWS
        while wanted and done >= wanted[0]:
            rss[f"rss_mb_at_{wanted.pop(0)}_rows"] = _rss_mb(process.pid)
        time.sleep(0.5)
    seconds = time.perf_counter() - started
    out = process.stdout.read()
    if process.returncode != 0:
        raise RuntimeError(f"classify-file failed: {out[-2000:]}")
    rows = int(re.search(r"([\d,]+) rows classified", out).group(1).replace(",", ""))
    actors = re.search(r"by (\d+) Ray actors?", out)
    return {"rows": rows, "seconds": round(seconds, 1), "rows_per_s": round(rows / seconds, 1), **rss} | (
        {"actors": int(actors.group(1))} if actors else {})


def run(settings: Settings, rows: int = 200_000, ray_rows: int = 20_000) -> dict:
    plots = _descriptions(settings)
    with running_service(settings) as (url, _):
        _batch_per_s(url, plots, batches=3)  # warm-up
        batch = _batch_per_s(url, plots, batches=30)
    figures = {"batch_per_s": batch}
    with tempfile.TemporaryDirectory() as tmp:
        source = write_catalogue(Path(tmp) / "catalogue.csv", plots, rows)
        local = _classify_file(source, Path(tmp) / "out.csv", settings,
                               rss_at_rows=(10_000, rows - rows % CHUNK_ROWS))
        figures["local"] = local | {"vs_batch": round(local["rows_per_s"] / batch, 2)}
        if ray_rows:
            ray_source = write_catalogue(Path(tmp) / "ray.csv", plots, ray_rows)
            figures["ray"] = _classify_file(ray_source, Path(tmp) / "ray-out.csv", settings, "--engine", "ray")
    return figures
