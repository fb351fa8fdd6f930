"""manage.py analyze_call CALL_ID [--sync] [--reextract]"""

import pytest
from django.core.management import CommandError, call_command

from calls.models import AnalysisRun
from calls.services import call_finalize
from calls.tests.postcall import scenarios
from calls.tests.postcall.conftest import call_with_turns

pytestmark = pytest.mark.django_db


@pytest.fixture
def ended_call(broker):
    call = call_with_turns(scenarios.CHECK_IN)
    call_finalize(call_id=call.pk, end_reason="agent_end")
    AnalysisRun.objects.filter(call=call).update(status="done")
    return call


def test_sync_runs_every_stage_here_and_prints_the_result(ended_call, broker, capsys):
    call_command("analyze_call", str(ended_call.public_id)[:8], "--sync")
    out = capsys.readouterr().out
    assert "Analysis #2: done" in out and '"driver_status": "delayed"' in out and "Summary: Driver check-in call" in out
    assert "Transcribe recording" in out and "skipped" in out
    run = AnalysisRun.objects.get(call=ended_call, number=2)
    assert run.reason == "operator" and run.status == "done"
    assert broker.sent == []  # nothing went to the workers


def test_without_sync_it_is_queued(ended_call, broker, capsys):
    call_command("analyze_call", str(ended_call.pk))
    assert "Analysis #2 of call" in capsys.readouterr().out
    assert broker.names() == ["call_transcribe_task"]


def test_reextract_only(ended_call, broker, capsys):
    call_command("analyze_call", str(ended_call.public_id), "--reextract", "--sync")
    run = AnalysisRun.objects.get(call=ended_call, number=2)
    assert list(run.stages.values_list("name", flat=True)) == ["extract", "act", "notify", "analytics"]


def test_errors_an_operator_can_act_on(ended_call, broker):
    with pytest.raises(CommandError, match="No call"):
        call_command("analyze_call", "999999")
    AnalysisRun.objects.filter(call=ended_call).update(status="running")
    with pytest.raises(CommandError, match="use --force"):
        call_command("analyze_call", str(ended_call.pk))
    live = call_with_turns(scenarios.CHECK_IN)
    with pytest.raises(CommandError, match="has not ended"):
        call_command("analyze_call", str(live.pk))
