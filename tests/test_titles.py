"""Titles in any language and script: a film's other titles (TMDB 5000's original_title, a corpus's aliases) are
matched by the lookup, and text in scripts without spaces is told apart as a title or a description."""
import csv
import re

import numpy as np
import pytest

from service.corpus import load_corpus
from service.films import normalise_title
from service.lookup.kinds import detect_kind

from .conftest import REFERENCE, make_client, write_generic_csv

CJK = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff]")


def _tmdb_rows() -> list[dict]:
    with (REFERENCE / "tmdb_5000_movies.csv").open(encoding="utf-8", newline="") as f:
        return [r for r in csv.DictReader(f) if r["overview"] and r["genres"] != "[]"]


def _original_titles(language: str, count: int) -> list[dict]:
    """Films of the reference whose own title differs from the English one, in that original language."""
    return [r for r in _tmdb_rows() if r["original_language"] == language
            and normalise_title(r["original_title"]) != normalise_title(r["title"])
            and (language not in ("zh", "ja") or CJK.search(r["original_title"]))][:count]


CHINESE_AND_JAPANESE_SENTENCES = [
    "一个年轻的巫师踏上冒险之旅，去击败黑暗魔王。",
    "一个年轻的巫师踏上冒险之旅，去打败一个黑暗的魔法师。",
    "两个警察在香港追捕一个危险的毒贩",
    "一名退休的杀手为了保护他的女儿重新拿起了武器",
    "在未来的世界里，机器人统治了地球。",
    "若い魔法使いが闇の魔術師を倒すために冒険に出る。",
    "少女は不思議な町に迷い込み、両親を救うために働き始める",
    "東京の高校生が突然、謎の怪物と戦うことになる物語です",
    "ある日、宇宙人が地球にやってきた。",
    "侍たちが村を盗賊から守るために集まる",
]


def test_chinese_and_japanese_sentences_are_descriptions_and_their_titles_titles():
    titles = [r["original_title"] for r in _original_titles("zh", 5) + _original_titles("ja", 5)]
    assert len(titles) == 10
    assert [detect_kind(t) for t in titles] == ["title"] * 10, titles
    assert [detect_kind(s) for s in CHINESE_AND_JAPANESE_SENTENCES] == ["description"] * 10


@pytest.fixture(scope="module")
def titled_index(tmp_path_factory):
    """An English index of films whose original titles are Japanese, Chinese, Korean, French, German and
    Spanish, among others, read from TMDB 5000's own format (original_title and all)."""
    from service.build import build_index
    from service.settings import Settings

    picked = {language: _original_titles(language, 2) for language in ("ja", "zh", "ko", "fr", "de", "es")}
    spirited = [r for r in _tmdb_rows() if r["title"] == "Spirited Away"]
    others = _tmdb_rows()[:60]
    folder = tmp_path_factory.mktemp("titled")
    rows = others + spirited + [r for rows in picked.values() for r in rows]
    with (folder / "tmdb_5000_movies.csv").open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    index_dir = folder / "index"
    build_index(folder / "tmdb_5000_movies.csv", index_dir, Settings(index_dir=index_dir, llm_backend="none",
                                                                     multilingual_model=""), progress=False)
    return index_dir, picked


@pytest.mark.parametrize("language", ["ja", "zh", "ko", "fr", "de", "es"])
def test_a_films_original_title_answers_with_that_films_labels(titled_index, language):
    index_dir, picked = titled_index
    client = make_client(index_dir, multilingual_model="")
    films = {f.title: f for f in load_corpus(index_dir.parent / "tmdb_5000_movies.csv").films}
    for row in picked[language]:
        answer = client.post("/classify", params={"mode": "auto"}, json={"description": row["original_title"]})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["lookup"]["kind"] == "title", row["original_title"]
        assert body["lookup"]["matched"]["title"] == row["title"]
        assert body["lookup"]["matched"]["alias"] == row["original_title"]
        assert body["lookup"]["known_genres"]["reference"] == list(films[row["title"]].genres)
        assert body["genres"][:len(films[row["title"]].genres)] == list(films[row["title"]].genres)


def test_spirited_aways_japanese_title_answers_animation(titled_index):
    client = make_client(titled_index[0], multilingual_model="")
    body = client.post("/classify", params={"mode": "auto"}, json={"description": "千と千尋の神隠し"}).json()
    assert "Animation" in body["genres"] and body["lookup"]["matched"]["title"] == "Spirited Away"


def test_a_corpus_may_name_a_films_other_titles_in_an_aliases_column(tmp_path):
    from service.lookup.lookup import Lookup
    from service.store import ReferenceIndex

    corpus = write_generic_csv(tmp_path / "films.csv", [
        {"title": "Amélie", "year": 2001, "plot": "A shy waitress in Paris decides to change the lives of others.",
         "genres": "Comedy, Romance", "companies": ""}])
    text = corpus.read_text(encoding="utf-8").splitlines()
    corpus.write_text("\n".join([text[0] + ",aliases", text[1] + ",Le fabuleux destin d'Amélie Poulain|天使爱美丽"]),
                      encoding="utf-8")
    films = load_corpus(corpus).films
    assert films[0].aliases == ("Le fabuleux destin d'Amélie Poulain", "天使爱美丽")
    lookup = Lookup(None, None, ReferenceIndex(films, np.zeros((len(films), 4), np.float32)))
    expected = {"le fabuleux destin d'amelie poulain": films[0].aliases[0], "天使爱美丽": films[0].aliases[1],
                "Amelie": None}
    for asked, alias in expected.items():
        found = lookup.lookup(asked, "title")
        assert found.match.title == "Amélie" and found.known_genres["reference"] == ["Comedy", "Romance"]
        assert found.match.alias == alias


@pytest.mark.parametrize("text", [
    "رجل عجوز يعلّم الإوز الطيران",                       # Arabic, no final stop
    "شاب يحاول إنقاذ عائلته من عصابة خطيرة",
    "한 소년이 마법사가 되어 악당과 싸운다",                    # Korean, a sentence ending, no stop
    "소녀는 잃어버린 강아지를 찾아 도시를 헤맨다",
    "एक युवा जादूगर अंधेरे जादूगर को हराने निकलता है।",        # Hindi, ending with a danda
    "एक लड़का अपने पिता की तलाश में शहर जाता है",
    "ชายหนุ่มคนหนึ่งออกเดินทางเพื่อตามหาพ่อของเขา",              # Thai, written without spaces
    "一名警察追捕逃跑的银行劫匪",                              # 13 Chinese characters, no sentence mark
    "少年巫师踏上冒险之旅击败黑暗魔王",
    "Молодой волшебник отправляется в путешествие чтобы победить тёмного колдуна",
])
def test_short_descriptions_in_other_scripts_without_a_stop_are_descriptions(text):
    assert detect_kind(text) == "description"


@pytest.mark.parametrize("title", ["친절한 금자씨", "좋은 놈, 나쁜 놈, 이상한 놈", "कुछ कुछ होता है", "कभी अलविदा ना कहना",
                                   "جدایی نادر از سیمین", "ต้มยำกุ้ง", "ฉลาดเกมส์โกง", "西游记之孙悟空三打白骨精",
                                   "Белка и Стрелка. Звёздные собаки"])
def test_titles_in_those_scripts_stay_titles(title):
    assert detect_kind(title) == "title"
