"""Sentences of what the agent says: one splitter for the dialog, streamed LLM text and speech synthesis."""

from __future__ import annotations

import re

_NEVER_END = {"mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "rev", "gen", "capt", "lt", "sgt",
              "hon", "e.g", "i.e", "cf", "viz", "approx", "dept", "est"}
_BEFORE_NUMBER = {"no", "nos", "vs", "ext", "tel", "apt", "fig", "vol", "p", "pp", "ref", "rm", "ste"}
# End a sentence only when a capitalized word follows ("... at 5 p.m. Tomorrow").
_MAYBE_END = {"etc", "inc", "ltd", "co", "corp", "a.m", "p.m", "am", "pm", "u.s", "jan", "feb", "mar", "apr",
              "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec"}
_BOUNDARY = re.compile(r"([.!?…]+[\"'”’)\]]*)(\s+)")


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def clean_text(text: str) -> str:
    """Drop control characters (NUL crashes espeak's phonemizer) and Piper's "[[ phonemes ]]"
    escape, so text from callers or an LLM is always read as words."""
    return _CONTROL.sub(" ", str(text or "")).replace("[[", "[").replace("]]", "]")


def split_sentences(text: str) -> list[str]:
    """Split text at sentence ends, not at "Dr.", "3.5", "$10.50", "e.g." or initials.

    Newlines always end a sentence (lists, addresses read out line by line). The text is
    cleaned first (`clean_text`); pieces without a single letter or digit are dropped.
    """
    sentences: list[str] = []
    for paragraph in re.split(r"\s*\n\s*", clean_text(text)):
        start = 0
        for m in _BOUNDARY.finditer(paragraph):
            punct = m.group(1)
            if punct.startswith(".") and len(punct.rstrip("\"'”’)]")) == 1:
                word = re.search(r"([\w.]*)$", paragraph[start : m.start()]).group(1).lower()
                nxt = paragraph[m.end() : m.end() + 1]
                initial = len(word) == 1 and word.isalpha() and paragraph[m.start() - 1].isupper()
                if word in _NEVER_END or initial:
                    continue  # a title or an initial ("J. Smith")
                if word in _BEFORE_NUMBER and nxt.isdigit():
                    continue
                if word in _MAYBE_END and not nxt.isupper():
                    continue
            sentence = paragraph[start : m.end(1)].strip()
            if sentence:
                sentences.append(sentence)
            start = m.end()
        tail = paragraph[start:].strip()
        if tail:
            sentences.append(tail)
    return [s for s in sentences if re.search(r"\w", s)]


class SentenceBuffer:
    """Collects streamed text and hands back whole sentences as soon as they are complete."""

    def __init__(self) -> None:
        self._text = ""

    def feed(self, chunk: str) -> list[str]:
        self._text += chunk
        parts = split_sentences(self._text)
        if len(parts) <= 1:
            return []
        # The last part may still grow; keep it (with any trailing space) for later.
        done = parts[:-1]
        self._text = parts[-1] + (" " if self._text.endswith(" ") else "")
        return done

    def flush(self) -> list[str]:
        parts = split_sentences(self._text)
        self._text = ""
        return parts
