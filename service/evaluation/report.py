"""Writing an evaluation: a markdown table, results.json and a per-genre F1 chart."""
from __future__ import annotations

import json
from pathlib import Path

from service.atomic import atomic_path, write_bytes

COLUMNS = [("micro_f1", "micro-F1"), ("macro_f1", "macro-F1"), ("samples_f1", "samples-F1"),
           ("precision", "precision"), ("recall", "recall"), ("mean_predicted", "labels/film"),
           ("latency_ms", "ms/film")]

LABELS = {"tfidf_nb": "TF-IDF + naive Bayes", "tfidf_svm": "TF-IDF + linear SVM",
          "tfidf_logreg": "TF-IDF + logistic regression", "knn": "MiniLM kNN vote",
          "served": "**served (/classify, no LLM)**", "served_fp32": "served, fp32 English model (torch)",
          "served_known": "served, films known to the reference (no exclusion)",
          "llm_only": "LLM alone", "vote": "served without LLM (same films)",
          "fused_default": "served with LLM, default fusion", "fused_calibrated": "served with LLM, calibrated fusion"}


def markdown(results: dict) -> str:
    rows = {**results["methods"], "served": results["served"],
            **{k: results[k] for k in ("served_known", "served_fp32") if k in results}}
    mean_gold = results["served"]["mean_gold"]
    lines = [f"Evaluation on `{results['data']}`: {results['films']} films; {_excluded(results['excluded'])}, from "
             f"retrieval and training. Gold labels per film: {mean_gold:.2f}; the served pipeline recognised "
             f"{results['served']['recognised']} of them as a reference film.",
             "", "| method | " + " | ".join(label for _, label in COLUMNS) + " |",
             "|---|" + "---:|" * len(COLUMNS)]
    for name, r in rows.items():
        cells = ["–" if key not in r else f"{r[key]:.2f}" if key == "latency_ms" else f"{r[key]:.3f}"
                 for key, _ in COLUMNS]
        films = f" ({r['films']} films)" if r["films"] != results["films"] else ""
        lines.append(f"| {LABELS.get(name, name)}{films} | " + " | ".join(cells) + " |")
    return "\n".join(lines + _calibration(results) + _llm(results) + _languages(results) + _sequels(results) +
                     _wizard(results)) + "\n"


def _llm(results: dict) -> list[str]:
    """The LLM's runs: the same films without it, it alone, fused both ways, with paired bootstrap intervals."""
    runs = {"en": results["llm"]} if "llm" in results else {}
    runs |= {code: r["llm"] for code, r in results.get("languages", {}).items() if "llm" in r}
    if not runs:
        return []
    lines = ["", "With the LLM, the same films each way (micro-F1; fused minus vote: paired bootstrap 95% interval):",
             "", "| language | films | vote alone | LLM alone | fused, default | − vote | fused, calibrated | − vote | "
             "calibrated weight, floor |", "|---|---:|---:|---:|---:|---|---:|---|---|"]
    for code, r in runs.items():
        fusion = r["fused_calibrated"]["fusion"]["english" if code == "en" else "multilingual"]
        lines.append(f"| {code} | {r['vote']['films']} | {r['vote']['micro_f1']:.3f} | "
                     f"{r['llm_only']['micro_f1']:.3f} | "
                     f"{r['fused_default']['micro_f1']:.3f} | {_interval(r['fused_default'])} | "
                     f"{r['fused_calibrated']['micro_f1']:.3f} | {_interval(r['fused_calibrated'])} | "
                     f"{fusion['weight']}, {fusion['floor']} ({fusion['source']}) |")
    return lines


def _interval(r: dict) -> str:
    low, high = r["minus_vote_95"]
    return f"[{low:+.3f}, {high:+.3f}]"


def _excluded(counts: dict) -> str:
    return (f"{counts['total']} reference films excluded as the same films ({counts['by_title']} by title or other "
            f"title and year, {counts['by_plot_text']} more by the very plot text, {counts['by_plot_similarity']} "
            f"more by a plot that close: see exclusion.NEAR_DUPLICATE, {counts.get('suspected_same_film', 0)} more "
            f"suspected the same film: the served recognition would take a held-out film for them{_rounds(counts)})")


def _rounds(counts: dict) -> str:
    rounds = counts.get("suspected_rounds")
    if not rounds:
        return ""
    found = " + ".join(map(str, rounds))
    if counts.get("fixed_point", True):
        return f", found in {len(rounds)} rounds ({found}) until none was left"
    return (f", found in {len(rounds)} rounds ({found}) and not a fixed point: the last round still found "
            f"{rounds[-1]}, which stay in the reference")


def _calibration(results: dict) -> list[str]:
    """What every stored fit dropped of the films this evaluation reports on (held_out.py)."""
    record = results.get("calibration")
    if not record:
        return []
    sets = ", ".join(f"`{name}` ({d['films']})" for name, d in record["evaluation_sets"].items())
    lines = ["", f"Calibration never sees an evaluation film: the films of {sets} were dropped from every set a "
                 "stored fit was tuned on, by title and year (or a reference film both name), by plot text, or by a "
                 "plot that close:", "",
             "| fit | calibration set | films | dropped | by title | by plot text | by a plot that close |",
             "|---|---|---:|---:|---:|---:|---:|"]
    names = {"recognition": "recognition models (`tune-recognition`)", "llm": "the LLM's say (`calibrate-llm`)"}
    for fit, stored in record["stored"].items():
        if not stored:
            lines.append(f"| {names[fit]} | **not recorded: its calibration may hold evaluation films** | | | | | |")
            continue
        same = "" if stored["same_sets"] else " **(did not drop all of these sets: rerun it)**"
        for name, d in stored["dropped"].items():
            lines.append(f"| {names[fit]}{same} | {name} | {d['films']} | {d['dropped']} | {d['by_title']} | "
                         f"{d['by_plot_text']} | {d['by_plot_similarity']} |")
    return lines


def _sequels(results: dict) -> list[str]:
    """New descriptions of sequels the reference holds, served by the index as it is."""
    r = results.get("sequels")
    if not r:
        return []
    lines = ["", f"Sequels (`{Path(r['data']).name}`: {r['films']} new English descriptions of sequels the reference "
                 f"holds, the index as it is): recognised as itself {r['itself']}, as another film "
                 f"{r['another film']}, answered with its series' shared genres {r['series']} (and "
                 f"{r['series without it']} with a series it is not of), not recognised {r['none']}.", "",
             "| sequel | answer | recognised as |", "|---|---|---|"]
    for each in r["each"]:
        answer = f"{each['outcome']}: {each['answer']}" if each["answer"] else each["outcome"]
        lines.append(f"| {each['title']} | {', '.join(each['genres'])} | {answer} |")
    return lines


def _languages(results: dict) -> list[str]:
    """The served pipeline per language, on films the calibration never saw: the main file whole (English), each
    multilingual dev file's evaluation half; unseen (excluded as above) and known (the index as it is)."""
    if not results.get("languages"):
        return []
    lines = ["", "Served (/classify, no LLM) per language: the English file, and the evaluation half of each "
                 "multilingual file (its calibration half chose the recognition model and the LLM's say). Unseen: "
                 "each file's films excluded from the reference (title / plot text / plot similarity / suspected "
                 "same film); recognised: answered with a reference film's labels, which for an unseen film is "
                 "always another film. Known: the same films as the index holds them; recall: of the films whose "
                 "title and year name their own reference film, how many were recognised as it; as another: "
                 "recognised as another film; as its series: of the films answered with a series' shared genres, "
                 "how many are of it; another year: of all the films, recognised as a film of another year:",
             "", "| language | file | films | excluded | unseen micro-F1 | recognised | known micro-F1 | recall | "
                 "as another | as its series | another year | multilingual route | ms/film |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    rows = {"en": results["served"] | {"data": results["data"], "excluded": results["excluded"],
                                       "known": results.get("served_known", {})}, **results["languages"]}
    for code, r in rows.items():
        share = r.get("routes", {}).get("multilingual", 0) / max(r["films"], 1)
        e, known, n = r["excluded"], r.get("known", {}), max(r["films"], 1)
        excluded = f"{e['total']} ({e['by_title']} / {e['by_plot_text']} / {e['by_plot_similarity']} / " \
                   f"{e.get('suspected_same_film', 0)})"
        recall = f"{known['recognised_right']} of {known['recognised_matched']}" if "recognised_matched" in known \
            else "–"
        wrong = f"{known['recognised_wrong']}" if "recognised_wrong" in known else "–"
        series = f"{known['recognised_series_own']} of {known['recognised_series']}" \
            if "recognised_series" in known else "–"
        other_year = f"{known['recognised_other_year'] / n:.1%}" if "recognised_other_year" in known else "–"
        known_f1 = f"{known['micro_f1']:.3f}" if "micro_f1" in known else "–"
        lines.append(f"| {code} | `{Path(r['data']).name}` | {r['films']} | {excluded} | {r['micro_f1']:.3f} | "
                     f"{r['recognised']} ({r['recognised'] / n:.1%}) | {known_f1} | {recall} | {wrong} | {series} | "
                     f"{other_year} | {share:.0%} | {r['latency_ms']:.2f} |")
    return lines


def _wizard(results: dict) -> list[str]:
    if "wizard" not in results:
        return []
    lines = ["", "The README's example sentence, translated (Fantasy or Adventure expected):", "",
             "| language | detected | route | genres | ok |", "|---|---|---|---|---|"]
    for code, r in results["wizard"].items():
        lines.append(f"| {code} | {r['language'] or '–'} | {r['route']} | {', '.join(r['genres'])} | "
                     f"{'yes' if r['ok'] else '**no**'} |")
    return lines


def chart(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = {**results["methods"], "served": results["served"]}
    genres = list(results["served"]["per_genre_f1"])
    width = 0.8 / len(rows)
    fig, ax = plt.subplots(figsize=(14, 5))
    for i, (name, r) in enumerate(rows.items()):
        ax.bar(np.arange(len(genres)) + i * width, [r["per_genre_f1"].get(g, 0) for g in genres], width,
               label=LABELS.get(name, name).strip("*"))
    ax.set_xticks(np.arange(len(genres)) + 0.4 - width / 2, genres, rotation=45, ha="right")
    ax.set_ylabel("F1")
    ax.set_title(f"Per-genre F1 on {Path(results['data']).name}")
    ax.legend(fontsize=8, ncol=3)
    fig.tight_layout()
    fig.savefig(path, dpi=110, format="png")
    plt.close(fig)


def write(results: dict, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    write_bytes(folder / "report.md", markdown(results).encode("utf-8"))
    write_bytes(folder / "results.json", json.dumps(results, indent=2).encode("utf-8"))
    with atomic_path(folder / "per_genre_f1.png") as tmp:
        chart(results, tmp)
