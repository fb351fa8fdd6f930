"""Run scripted conversations (YAML, see agents/conversations.py) and print a pass/fail table.

    manage.py test_conversations agents/tests/conversations [more paths] [-v 2] [--engine dotted.path]

Each conversation runs in a transaction that is rolled back, so the database is left as it was.
Exits with status 1 when any conversation fails.
"""

from django.core.management.base import BaseCommand, CommandError
from django.utils.module_loading import import_string

from agents.conversations import (
    ConversationError,
    conversations_in,
    results_table,
    run_conversation,
)


class Command(BaseCommand):
    help = "Run YAML conversation tests against the dialog engine and print a pass/fail table."

    def add_arguments(self, parser) -> None:
        parser.add_argument("paths", nargs="+", help="YAML files or directories of them.")
        parser.add_argument("--engine", default="", help="Dotted path of the engine class (default: the deterministic engine).")

    def handle(self, *args, paths: list[str], engine: str, verbosity: int, **options) -> None:
        engine_instance = import_string(engine)() if engine else None
        results = []
        try:
            for path in paths:
                for source, conversation in conversations_in(path):
                    result = run_conversation(conversation, source=source, engine=engine_instance)
                    results.append(result)
                    if verbosity >= 2:
                        self.stdout.write(f"\n== {result.name} ({source})")
                        for who, text in result.transcript:
                            self.stdout.write(f"  {who:>6}: {text}")
        except ConversationError as exc:
            raise CommandError(str(exc)) from None
        if not results:
            raise CommandError("No conversations found.")
        self.stdout.write(results_table(results))
        if not all(r.passed for r in results):
            raise SystemExit(1)
