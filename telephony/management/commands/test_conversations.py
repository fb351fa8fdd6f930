"""Run scripted conversations (YAML, see telephony/chat/conversations.py) and print a pass/fail table.

    manage.py test_conversations                           every scenario pack's conversations
    manage.py test_conversations --scenario dispatch       one pack's (repeat --scenario for more)
    manage.py test_conversations path/to/file-or-folder    any YAML conversations
    [-v 2] prints every transcript; [--engine dotted.path] plays another dialog engine

Each conversation runs through a text session in a transaction that is rolled back, so the
database is left as it was. Exits with status 1 when any conversation fails.
"""

from django.core.management.base import BaseCommand, CommandError
from django.utils.module_loading import import_string

from agents.scenarios import ScenarioError
from telephony.chat.conversations import (
    ConversationError,
    conversations_in,
    pack_conversations,
    results_table,
    run_conversation,
)


class Command(BaseCommand):
    help = "Run YAML conversation tests against the dialog engine and print a pass/fail table."

    def add_arguments(self, parser) -> None:
        parser.add_argument("paths", nargs="*", help="YAML files or directories of them (default: the scenario packs').")
        parser.add_argument("--scenario", action="append", default=[], help="A scenario pack's slug, e.g. dispatch.")
        parser.add_argument("--engine", default="", help="Dotted path of the engine class (default: the deterministic engine).")

    def handle(self, *args, paths: list[str], scenario: list[str], engine: str, verbosity: int, **options) -> None:
        engine_instance = import_string(engine)() if engine else None
        results = []
        try:
            found = [c for path in paths for c in conversations_in(path)]
            if scenario or not paths:
                found += pack_conversations(scenario or None)
            for source, conversation in found:
                result = run_conversation(conversation, source=source, engine=engine_instance)
                results.append(result)
                if verbosity >= 2:
                    self.stdout.write(f"\n== {result.name} ({source})")
                    for who, text in result.transcript:
                        self.stdout.write(f"  {who:>6}: {text}")
        except (ConversationError, ScenarioError) as exc:
            raise CommandError(str(exc)) from None
        if not results:
            raise CommandError("No conversations found.")
        self.stdout.write(results_table(results))
        if not all(r.passed for r in results):
            raise SystemExit(1)
