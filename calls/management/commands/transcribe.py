"""Print the transcript of audio files, with the live-call STT engine.

    manage.py transcribe FILE [FILE...] [--model tiny.en|base|DIR] [--beam 1] [--words]
"""

from django.core.management.base import BaseCommand, CommandError

from calls.speech.audio import AudioError
from calls.speech.errors import SttError
from calls.speech.files import transcribe_file


class Command(BaseCommand):
    help = "Transcribe WAV files (any rate, width or channel count) and print the text."

    def add_arguments(self, parser) -> None:
        parser.add_argument("files", nargs="+", metavar="FILE")
        parser.add_argument("--model", default=None, help='"tiny.en", "base" or a CTranslate2 model directory '
                                                         "(default: the STT_MODEL setting).")
        parser.add_argument("--language", default=None, help="Language code (default: STT_LANGUAGE).")
        parser.add_argument("--beam", type=int, default=1, help="Beam width (1 = greedy, as in live calls).")
        parser.add_argument("--words", action="store_true", help="Also print each word with its timing.")

    def handle(self, *args, files: list[str], model: str | None, language: str | None, beam: int, words: bool,
               **options) -> None:
        verbose = options.get("verbosity", 1) > 1
        failed = 0
        for path in files:
            prefix = f"{path}: " if len(files) > 1 else ""
            try:
                transcript = transcribe_file(path, model, language=language, beam_size=beam)
            except (AudioError, OSError) as exc:
                failed += 1
                self.stderr.write(f"{path}: cannot read audio: {exc}")
                continue
            except SttError as exc:
                raise CommandError(f"STT engine failed: {exc.message}") from exc
            self.stdout.write(f"{prefix}{transcript.text}")
            if verbose:
                self.stdout.write(f"  ({transcript.duration:.1f} s of audio, confidence {transcript.confidence:.2f}, "
                                  f"{transcript.elapsed:.2f} s, model {transcript.model})")
            if words:
                for word in transcript.words:
                    self.stdout.write(f"  {word.start:7.2f} {word.end:7.2f}  {word.probability:.2f}  {word.text}")
        if failed:
            raise CommandError(f"{failed} of {len(files)} files could not be read")
