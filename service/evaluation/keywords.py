"""`make eval-keywords`: a second taxonomy, TMDB 5000's keywords, learned from the corpus and answered zero-shot.

The 40 most frequent story keywords of TMDB 5000 (production facts such as "woman director" or
"duringcreditsstinger" left out) are the labels. A seeded 80% of the films carrying any of them builds an
index with the corpus's vocabulary; on the other 20% the evaluation compares the service with that
vocabulary, the classic methods trained on the same 80% (make eval's rows), and the zero-shot path: the
served default index (genres only, no example of any keyword) asked with the keywords as the request's
`labels`, scored by the embedding, and by the LLM where one is configured (on a seeded sample).
"""
from __future__ import annotations

import csv
import json
import random
from collections import Counter
from pathlib import Path

from service.build import build_index
from service.evaluation import runner
from service.scoring.metrics import ranking, score
from service.settings import Settings

LABELS = 40
TEST_SHARE = 0.2
# what a keyword says of the production or the rating, not of the story
PRODUCTION_FACTS = {"woman director", "independent film", "duringcreditsstinger", "aftercreditsstinger", "3d",
                    "sequel", "remake", "nudity", "female nudity", "stop motion"}


def keyword_films(path: Path) -> tuple[list[str], list[dict]]:
    """The 40 story keywords and, in the generic corpus format, the films carrying any of them."""
    with path.open(encoding="utf-8", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["overview"].strip()]
    keywords = [{k["name"] for k in json.loads(r["keywords"] or "[]")} for r in rows]
    counts = Counter(k for ks in keywords for k in ks if k not in PRODUCTION_FACTS and not set(k) & set(",|/;"))
    labels = [k for k, _ in counts.most_common(LABELS)]
    films = [{"title": r["title"], "year": r["release_date"][:4], "plot": r["overview"],
              "genres": ", ".join(k for k in labels if k in ks)} for r, ks in zip(rows, keywords) if set(labels) & ks]
    return labels, films


def split(films: list[dict], seed: int = 0) -> tuple[list[dict], list[dict]]:
    order = list(range(len(films)))
    random.Random(seed).shuffle(order)
    cut = int(len(films) * TEST_SHARE)
    return [films[i] for i in sorted(order[cut:])], [films[i] for i in sorted(order[:cut])]


def _write(path: Path, films: list[dict]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["title", "year", "plot", "genres"])
        writer.writeheader()
        writer.writerows(films)
    return path


def run(settings: Settings, work: Path, llm_limit: int = 100, progress: bool = True) -> dict:
    labels, films = keyword_films(settings.index.data / "tmdb_5000_movies.csv")
    train, test = split(films)
    work.mkdir(parents=True, exist_ok=True)
    corpus, held_out = _write(work / "train.csv", train), _write(work / "test.csv", test)
    index_dir = work / "index"
    keyword_settings = settings.replace(index_dir=index_dir, llm_backend="none",
                                        models_dir=settings.index.exported_models())
    build_index(corpus, index_dir, keyword_settings, progress=progress, vocabulary="corpus")
    results = runner.run(keyword_settings, held_out, progress=progress, languages={})
    gold = [f["genres"].split(", ") for f in test]
    results["zero_shot"] = {"embedding": zero_shot(settings.replace(llm_backend="none"),
                                                   test, labels, gold)}
    if settings.llm.backend != "none":
        sample = random.Random(0).sample(range(len(test)), min(llm_limit, len(test)))
        results["zero_shot"]["llm"] = zero_shot(settings, [test[i] for i in sample], labels,
                                                [gold[i] for i in sample])
    results["keywords"] = {"labels": labels, "films": len(films), "train": len(train), "test": len(test)}
    return results


def zero_shot(settings: Settings, films: list[dict], labels: list[str], gold: list[list[str]]) -> dict:
    """The served default index (no example of any keyword), asked with the keywords as the request's labels."""
    from service.loading import load_classifier

    classifier = load_classifier(settings)
    try:
        answers = [classifier.classify(f["plot"], labels=labels) for f in films]
    finally:
        classifier.close()
    ranked = [[s.label for s in sorted(a.label_scores, key=lambda s: -s.score)] for a in answers]
    return score(gold, [a.genres for a in answers], labels) | ranking(gold, ranked) | {"films": len(films)}


def markdown(results: dict) -> str:
    k = results["keywords"]
    rows = {**results["methods"], "served": results["served"]}
    names = {"tfidf_nb": "TF-IDF + naive Bayes", "tfidf_svm": "TF-IDF + linear SVM",
             "tfidf_logreg": "TF-IDF + logistic regression", "knn": "MiniLM kNN vote",
             "served": "**served, vocabulary from the corpus**"}
    lines = [f"TMDB 5000 keywords: the {len(k['labels'])} most frequent story keywords as labels; {k['films']} films "
             f"carry one, {k['train']} (seeded 80%) build the index, {k['test']} are judged. Zero-shot rows also rank "
             "all the labels by score: the mean reciprocal rank of the first true label (MRR), how often the first is "
             "true, and the true labels' mean rank (of 40).", "",
             "| method | examples of the labels | films | micro-F1 | macro-F1 | labels/film (gold " +
             f"{results['served']['mean_gold']:.2f}) | MRR | first true | mean true rank |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in rows.items():
        lines.append(f"| {names.get(name, name)} | {k['train']} films | {r['films']} | {r['micro_f1']:.3f} | "
                     f"{r['macro_f1']:.3f} | {r['mean_predicted']:.2f} | – | – | – |")
    for name, r in results["zero_shot"].items():
        label = "zero-shot: multilingual embedding" if name == "embedding" else "zero-shot: the LLM"
        lines.append(f"| {label} | none | {r['films']} | {r['micro_f1']:.3f} | {r['macro_f1']:.3f} | "
                     f"{r['mean_predicted']:.2f} | {r['mrr']:.3f} | {r['first_is_true']:.3f} | "
                     f"{r['mean_true_rank']:.2f} |")
    return "\n".join(lines) + "\n"
