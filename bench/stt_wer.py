"""Word error rate and speed of the STT engine on real telephone prompts.

The Asterisk core prompts (apt: asterisk-core-sounds-en-wav, asterisk-core-sounds-en) are
8 kHz recordings of a professional voice with published transcripts: a fair stand-in for
what the agent hears on a phone line. Prompts of 6+ words without digits or symbols are used.

    .venv/bin/python bench/stt_wer.py [--model tiny.en] [--limit N] [--beam 1] [--threads 2] [-v]
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOUNDS = Path("/usr/share/asterisk/sounds/en")
TRANSCRIPTS = Path("/usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz")

_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
         "sixteen seventeen eighteen nineteen").split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_CONTRACTIONS = {
    "can't": "cannot", "won't": "will not", "shan't": "shall not", "i'm": "i am", "let's": "let us",
    "it's": "it is", "that's": "that is", "there's": "there is", "what's": "what is", "he's": "he is",
    "she's": "she is", "here's": "here is",
}


def number_words(n: int) -> str:
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    if n < 1000:
        return _ONES[n // 100] + " hundred" + ("" if n % 100 == 0 else " " + number_words(n % 100))
    if n < 1_000_000:
        return number_words(n // 1000) + " thousand" + ("" if n % 1000 == 0 else " " + number_words(n % 1000))
    return " ".join(_ONES[int(d)] for d in str(n))


def normalize(text: str) -> list[str]:
    """Lowercase, expand contractions and numbers, drop punctuation: "Press 2." == "press two"."""
    text = re.sub(r"\([^)]*\)", " ", text)  # stage directions: "(simple tone sound plays)"
    text = text.lower().replace("’", "'").replace("okay", "ok")
    text = re.sub(r"(\d),(\d{3})", r"\1\2", text)
    text = re.sub(r"\d+", lambda m: " " + number_words(int(m.group())) + " ", text)
    text = re.sub(r"[-/]", " ", text)
    words = []
    for word in re.findall(r"[a-z']+", text):
        word = _CONTRACTIONS.get(word, word)
        word = re.sub(r"n't$", " not", word)
        word = re.sub(r"'re$", " are", word)
        word = re.sub(r"'ll$", " will", word)
        word = re.sub(r"'ve$", " have", word)
        word = re.sub(r"'d$", " would", word)
        words.extend(w.strip("'") for w in word.split() if w.strip("'"))
    return words


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


def load_prompts(min_words: int = 6) -> list[tuple[Path, str]]:
    prompts = []
    with gzip.open(TRANSCRIPTS, "rt", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            name, sep, text = line.partition(":")
            text = text.strip()
            if not sep or name.startswith(";") or not text:
                continue
            if re.search(r"[0-9\[\]*#@%&]", text) or len(text.split()) < min_words:
                continue
            wav = SOUNDS / f"{name.strip()}.wav"
            if wav.is_file():
                prompts.append((wav, text))
    return sorted(prompts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tiny.en", help="tiny.en, base or a CTranslate2 model dir")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N prompts")
    parser.add_argument("--beam", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-words", action="store_true", help="skip word timestamps")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every mistaken prompt")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voicecrm.settings")
    os.environ.setdefault("DEBUG", "1")
    import django

    django.setup()
    import logging

    logging.getLogger("faster_whisper").setLevel(logging.WARNING)
    from calls.speech.audio import read_wav, read_wav_info, resample
    from calls.speech.stt import WhisperEngine

    if not TRANSCRIPTS.is_file():
        print(f"missing {TRANSCRIPTS}: apt-get install asterisk-core-sounds-en asterisk-core-sounds-en-wav")
        return 2
    prompts = load_prompts()
    if args.limit:
        prompts = prompts[: args.limit]
    engine = WhisperEngine(args.model, threads=args.threads)
    engine.warm_up()
    engine.transcribe(read_wav(prompts[0][0]))  # first call pays one-off allocations

    errors = ref_words = 0
    audio_s = compute_s = 0.0
    per_utt: list[float] = []
    for wav, text in prompts:
        pcm, native = read_wav_info(wav)
        audio = resample(pcm, native, 16000)  # 8 kHz telephone audio -> the engine rate
        started = time.perf_counter()
        result = engine.transcribe(audio, beam_size=args.beam, word_timestamps=not args.no_words)
        took = time.perf_counter() - started
        ref, hyp = normalize(text), normalize(result.text)
        err = edit_distance(ref, hyp)
        errors += err
        ref_words += len(ref)
        audio_s += result.duration
        compute_s += took
        per_utt.append(took)
        if args.verbose and err:
            print(f"{wav.stem}: {err} errors\n  ref: {' '.join(ref)}\n  hyp: {' '.join(hyp)}")

    print(f"model            {args.model} (int8, {args.threads} threads, beam {args.beam})")
    print(f"utterances       {len(prompts)} ({ref_words} words, {audio_s:.1f} s of audio)")
    print(f"WER              {100 * errors / max(1, ref_words):.2f} %")
    print(f"RTF              {compute_s / max(audio_s, 1e-9):.3f}")
    print(f"s per utterance  mean {statistics.mean(per_utt):.3f}  median {statistics.median(per_utt):.3f}"
          f"  max {max(per_utt):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
