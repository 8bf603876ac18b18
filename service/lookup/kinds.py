"""Deciding what a lookup text is. The rules, in order:

1. `company` — the text is short (≤ 6 words) and ends with a company word ("Pictures", "Studios",
   "Entertainment", "Films", "Productions", ...) or is a well-known studio name.
2. `review` — the text speaks about watching a film: first person ("I", "my", "we"), verdict words
   ("loved", "boring", "masterpiece", "recommend", "overrated", "must-see"), or a score ("8/10", "4 stars").
3. `title` — short (≤ 10 words, ≤ 80 characters), not a sentence: no verb-like sentence end, at most one
   sentence mark, optionally followed by a year ("The Matrix", "the matrix (1999)", "Matrix 1999"). A full stop
   of any script ends a sentence (. 。 । ॥ ۔ ։ ። ။ ។ …). Other scripts are read by what their titles are like
   (the reference's titles in them: at most 12 Han or kana characters, 9 Thai ones, 4 words in Arabic or
   Devanagari, 6 in Hangul):
   - written without spaces (Chinese, Japanese, Thai, Lao, Khmer, Burmese, Tibetan): by characters. Han and
     kana: a sentence mark (。，；), more than 16 characters, or more than 12 with a word that holds a sentence
     together (在, 了, 他, 一个, 为了, が, を, ます …), or more than 10 with two such words ("千と千尋の神隠し" is a
     title, "一个年轻的巫师踏上冒险之旅，去击败黑暗魔王。" a description). Thai and its neighbours: more than 20.
   - written with spaces in another script than Latin: 5 words or more in Arabic or an Indian script, 7 or more
     in any other; a Korean sentence ending (…다, …요) from 3 words, a Hindi one (है, था, गया …) from 5.
4. `description` — everything else: a plot to classify as it is.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Literal

from service.corpus import parse_year

Kind = Literal["title", "review", "company", "description"]

_COMPANY_WORDS = {"pictures", "studios", "studio", "entertainment", "films", "film", "productions", "production",
                  "animation", "media", "company", "inc", "inc.", "ltd", "ltd.", "llc", "corp", "corporation",
                  "cinema", "releasing", "distribution", "television", "group"}
_KNOWN_STUDIOS = {"pixar", "marvel", "disney", "dreamworks", "ghibli", "studio ghibli", "a24", "lionsgate",
                  "warner bros", "warner bros.", "universal", "paramount", "blumhouse", "lucasfilm", "legendary",
                  "new line cinema", "miramax", "columbia", "20th century fox", "metro-goldwyn-mayer", "mgm",
                  "illumination", "aardman", "laika", "focus features", "neon", "netflix", "amblin"}
_REVIEW = re.compile(
    r"\b(i|i'm|i've|my|me|we|us|our)\b|\b(loved|love|hated|hate|boring|masterpiece|recommend|recommended|"
    r"overrated|underrated|must-see|must see|worth watching|waste of time|brilliant|awful|terrible|"
    r"enjoyed|disappointing|disappointed|stunning|a must)\b|\b\d+(\.\d)?\s*/\s*10\b|\b\d\s*stars?\b",
    re.IGNORECASE)
# Anchored at the end and fixed in length, so a search costs O(1) per position: a pattern that opens with an
# unbounded run ("[\s,]*…$") rescans the rest of the text from every position and is quadratic.
_YEAR_AT_END = re.compile(r"(?<!\d)(1[89]\d\d|20\d\d)$")
# Han ideographs (with the compatibility block) and Japanese kana, half-width katakana included
_HAN_OR_KANA = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f]")
_CJK_SENTENCE_MARK = re.compile(r"[。，；]")
MAX_CJK_TITLE_CHARS = 16
# Thai, Lao, Myanmar, Khmer and Tibetan letters: scripts written without spaces between words
_OTHER_UNSPACED = re.compile(r"[\u0e00-\u0eff\u0f00-\u0fff\u1000-\u109f\u1780-\u17ff]")
MAX_UNSPACED_TITLE_CHARS = 20
# full stops of other scripts than Latin (the Latin one is read with its exceptions below)
_FULL_STOPS = "。．｡।॥۔։።။།។܂"
_ARABIC_OR_INDIC = re.compile(r"[\u0590-\u08ff\u0900-\u0dff]")  # Hebrew, Arabic, Syriac, Thaana; Indian scripts
_LATIN_LETTER = re.compile(r"[A-Za-z\u00c0-\u024f\u1e00-\u1eff]")
_KOREAN_ENDINGS = ("다", "요")
_HINDI_ENDINGS = {"है", "हैं", "था", "थी", "थे", "गया", "गई", "गए", "जाता", "जाती", "जाते", "करता", "करती", "करते"}
# words that hold a sentence together (Chinese aspect and case words, pronouns; Japanese case particles and
# verb endings): two of them in a text of over 10 characters make it a sentence, not a title
_CJK_GRAMMAR = ("在", "了", "着", "把", "被", "他", "她", "们", "一个", "一名", "一位", "这", "为了", "必须", "开始",
                "发现", "决定", "试图", "帮助", "寻找", "拯救", "击败", "踏上", "爱上", "成为", "面对", "遇到", "讲述",
                "が", "を", "は", "に", "で", "ます", "です", "した")


@dataclass(frozen=True)
class TitleQuery:
    title: str
    year: int | None


def parse_title(text: str) -> TitleQuery:
    """'the matrix (1999)' / 'Matrix 1999' / 'The Matrix' → title and optional trailing year.
    A title that is only a year ('1917') stays a title."""
    text = " ".join(text.split())
    body = text.removesuffix(")").removesuffix("]").rstrip()
    match = _YEAR_AT_END.search(body)
    if match and int(match.group(1)) <= date.today().year + 2:
        title = body[: match.start()].rstrip(" ([").strip(" -–,")
        if title:
            return TitleQuery(title, int(match.group(1)))
    return TitleQuery(text, None)


ARTICLES = ("The", "A", "An")


def spellings(title: str) -> list[str]:
    """The title as given, then with a leading article if it has none ("Matrix" → "The Matrix", …)."""
    if title.split(" ", 1)[0].capitalize() in ARTICLES:
        return [title]
    return [title] + [f"{article} {title}" for article in ARTICLES]


def detect_kind(text: str) -> Kind:
    words = text.split()
    if not words:
        return "description"
    lowered = " ".join(words).lower().strip(" .!")
    if len(words) <= 6 and (lowered in _KNOWN_STUDIOS or words[-1].lower().strip(",.") in _COMPANY_WORDS):
        return "company"
    if _REVIEW.search(text):
        return "review"
    if _reads_as_sentence_in_its_script(text, words):
        return "description"
    sentence_marks = len(re.findall(r"[.!?](\s|$)", text))
    if len(words) <= 10 and len(text) <= 80 and sentence_marks <= 1 and not text.rstrip().endswith("."):
        return "title"
    return "description"


def _reads_as_sentence_in_its_script(text: str, words: list[str]) -> bool:
    if text.rstrip()[-1:] in _FULL_STOPS or _reads_as_cjk_sentence(text):
        return True
    if len(_OTHER_UNSPACED.findall(text)) > MAX_UNSPACED_TITLE_CHARS:
        return True
    letters = sum(char.isalpha() for char in text)
    if not letters or len(_LATIN_LETTER.findall(text)) * 2 >= letters:  # Latin script: the rules below
        return False
    if len(words) >= (5 if _ARABIC_OR_INDIC.search(text) else 7):
        return True
    last = words[-1].strip(" ,!?")
    return (len(words) >= 3 and last.endswith(_KOREAN_ENDINGS)) or (len(words) >= 5 and last in _HINDI_ENDINGS)


def _reads_as_cjk_sentence(text: str) -> bool:
    han_or_kana = len(_HAN_OR_KANA.findall(text))
    if han_or_kana == 0:
        return False
    if han_or_kana > MAX_CJK_TITLE_CHARS or _CJK_SENTENCE_MARK.search(text):
        return True
    grammar = sum(word in text for word in _CJK_GRAMMAR)
    return (han_or_kana > 12 and grammar >= 1) or (han_or_kana > 10 and grammar >= 2)


_QUOTED = re.compile(r"[\"“”‘’«»]([^\"“”‘’«»]{2,80})[\"“”‘’«»]|'([^']{2,80})'")
_CAPITALISED = re.compile(r"\b(?:The |A |An )?(?:[A-Z][\w'’:-]*)(?:\s+(?:of|the|and|in|on|a|to|[A-Z][\w'’:-]*)){0,6}")


def titles_in_review(review: str) -> list[TitleQuery]:
    """Candidate film titles a review mentions: quoted phrases first, then capitalised runs
    (sentence-initial single words and pronouns are skipped)."""
    candidates = [m.group(1) or m.group(2) for m in _QUOTED.finditer(review)]
    for match in _CAPITALISED.finditer(review):
        words = match.group(0).split()
        sentence_start = review[: match.start()].rstrip()[-1:] in {"", ".", "!", "?"}
        if sentence_start:  # "Watched Inception" → "Inception": the first word is capitalised anyway
            words = words[1:]
        if words:
            candidates.append(" ".join(words))
    seen, queries = set(), []
    for candidate in candidates:
        query = parse_title(candidate.strip(" .,!?"))
        key = query.title.lower()
        if key and key not in seen and key not in {"i", "the", "a", "it", "this"}:
            seen.add(key)
            queries.append(query)
    return queries[:5]


__all__ = ["Kind", "TitleQuery", "detect_kind", "parse_title", "parse_year", "titles_in_review"]
