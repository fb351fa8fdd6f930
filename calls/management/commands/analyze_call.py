"""manage.py analyze_call CALL_ID [--sync] [--reextract]: analyze one call again, for operators."""

import json
import uuid

from celery import current_app
from django.core.management.base import BaseCommand, CommandError

from calls.models import AnalysisRun, Call
from calls.postcall.pipeline import (
    STAGES_FULL,
    STAGES_REEXTRACT,
    analysis_run_create,
    analysis_run_dispatch,
    analysis_run_execute_sync,
    call_active_run,
)


class Command(BaseCommand):
    help = "Run the post-call analysis of a call again: queued on the workers, or here with --sync."

    def add_arguments(self, parser) -> None:
        parser.add_argument("call_id", help="The call's number (pk) or its public id (UUID, or its first 8 characters).")
        parser.add_argument("--sync", action="store_true", help="Run every stage in this process and print the result.")
        parser.add_argument("--reextract", action="store_true",
                            help="Only extract again with the agent's current schema (then act, notify, analytics).")
        parser.add_argument("--force", action="store_true", help="Start even if an analysis is under way.")

    def handle(self, *args, call_id: str, sync: bool, reextract: bool, force: bool, **options) -> None:
        call = self._find(call_id)
        if not call.is_finished:
            raise CommandError(f"Call {call.public_id} has not ended (status {call.status}).")
        active = call_active_run(call)
        if active is not None and not force:
            raise CommandError(f"Analysis #{active.number} of this call is {active.status}; use --force to start another.")
        stages = STAGES_REEXTRACT if reextract else STAGES_FULL
        if sync:
            app = current_app
            # Run here even with a broker configured: the on-commit dispatch must not also queue it.
            eager, app.conf.task_always_eager = app.conf.task_always_eager, True
            try:
                run = analysis_run_create(call=call, reason=AnalysisRun.Reason.OPERATOR, stages=stages)
            finally:
                app.conf.task_always_eager = eager
            run = AnalysisRun.objects.get(pk=run.pk)
            if run.status not in (AnalysisRun.Status.DONE, AnalysisRun.Status.FAILED):
                run = analysis_run_execute_sync(run=run)
            self._report(run)
            if run.status == AnalysisRun.Status.FAILED:
                raise CommandError(run.error or "the analysis failed")
            return
        run = analysis_run_create(call=call, reason=AnalysisRun.Reason.OPERATOR, stages=stages)
        run.refresh_from_db()
        # Sent on commit already, or try now (dispatch is idempotent) to report what the broker said.
        queued = run.dispatched_at is not None or analysis_run_dispatch(run_id=run.pk)
        where = "queued" if queued else "written; the broker is unreachable, the sweep will queue it"
        self.stdout.write(f"Analysis #{run.number} of call {call.public_id} {where}.")

    def _find(self, value: str) -> Call:
        value = value.strip().lower()
        try:
            call = Call.objects.filter(public_id=uuid.UUID(value)).first()
        except ValueError:
            call = Call.objects.filter(pk=int(value)).first() if value.isdigit() else None
            if call is None and len(value) >= 6 and all(c in "0123456789abcdef-" for c in value):
                matches = list(Call.objects.filter(public_id__startswith=value)[:2])
                if len(matches) > 1:
                    raise CommandError(f"{value!r} matches more than one call; give more of the id.") from None
                call = matches[0] if matches else None
        if call is None:
            raise CommandError(f"No call {value!r}.")
        return call

    def _report(self, run: AnalysisRun) -> None:
        call = Call.objects.get(pk=run.call_id)
        for stage in run.stages.order_by("position"):
            line = f"  {stage.get_name_display():<22} {stage.status:<8} {stage.duration_ms or 0:>6} ms"
            if stage.error:
                line += f"  {stage.error}"
            self.stdout.write(line)
        self.stdout.write(f"Analysis #{run.number}: {run.status} in {run.turnaround_seconds} s")
        self.stdout.write(f"Summary: {call.summary}")
        self.stdout.write(f"Outcome: {call.outcome}   Sentiment: {call.sentiment}")
        self.stdout.write("Data: " + json.dumps(call.structured_data, indent=2, ensure_ascii=False))
        if call.extraction_errors:
            self.stdout.write("Errors: " + json.dumps(call.extraction_errors, indent=2, ensure_ascii=False))
        for change in run.changes:
            self.stdout.write(f"  {change['change']:<8} {change['field']}: {change['before']!r} -> {change['after']!r}")
