"""Write speech for a text to a WAV file, with the live-call TTS engine (and its fallback).

    manage.py synthesize "Hello there." -o hello.wav [--voice joe|PATH.onnx] [--rate 1.1] [--sample-rate 8000]
"""

from django.core.management.base import BaseCommand, CommandError

from calls.speech.audio import SUPPORTED_RATES, AudioError
from calls.speech.errors import TtsError
from calls.speech.files import synthesize_to_file


class Command(BaseCommand):
    help = "Synthesize TEXT into a mono 16-bit WAV file."

    def add_arguments(self, parser) -> None:
        parser.add_argument("text", metavar="TEXT")
        parser.add_argument("-o", "--output", required=True, metavar="OUT.wav")
        parser.add_argument("--voice", default=None, help='"joe" or a Piper .onnx voice (default: TTS_VOICE).')
        parser.add_argument("--rate", type=float, default=None, help="Speaking rate: 1.0 normal, 1.2 = 20%% faster.")
        parser.add_argument("--sample-rate", type=int, default=None, choices=sorted(SUPPORTED_RATES),
                            help="Output sample rate (default: the voice's own).")

    def handle(self, *args, text: str, output: str, voice: str | None, rate: float | None,
               sample_rate: int | None, **options) -> None:
        if not text.strip():
            raise CommandError("TEXT is empty")
        try:
            speech = synthesize_to_file(text, output, voice, rate, sample_rate=sample_rate)
        except (TtsError, AudioError, OSError) as exc:
            raise CommandError(f"could not synthesize: {getattr(exc, 'message', exc)}") from exc
        if not speech.audio:
            raise CommandError("nothing to say: the text has no words")
        note = f" (fallback engine {speech.engine}: {speech.fallback_reason})" if speech.fallback_reason else ""
        self.stdout.write(f"wrote {output}: {speech.duration:.2f} s at {speech.sample_rate} Hz{note}")
