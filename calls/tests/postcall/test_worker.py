"""The pipeline on real processes: a Celery worker and beat, PostgreSQL, and a private Redis.

Nothing here is eager: the test process commits, publishes to Redis, and waits for the
worker to write its results to the test database.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.db import connection

from calls.models import AnalysisRun, AnalysisStage, Call, CallEvent, CallTranscript, Turn, WebhookDelivery, WebhookEndpoint
from calls.postcall.pipeline import pipeline_schedule
from calls.services import call_attach_recording, call_finalize
from calls.tests.postcall import scenarios
from calls.tests.postcall.conftest import assert_extracted, call_with_turns, consultation_service
from calls.tests.postcall.harness import recording_for, wait_for
from calls.webhooks import webhook_signature_verify

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def analyzed(call: Call, timeout: float = 120) -> Call:
    def finished():
        call.refresh_from_db()
        return call.analysis_status in (Call.AnalysisStatus.DONE, Call.AnalysisStatus.FAILED)

    wait_for(finished, timeout=timeout, interval=0.25, what=f"the analysis of call {call.pk}")
    return call


@pytest.mark.parametrize("scenario", scenarios.ALL, ids=lambda s: s.name)
def test_the_worker_analyzes_a_recorded_conversation(scenario, processes):
    consultation_service()
    call = call_with_turns(scenario)
    # What live speech recognition wrote for the caller is not used when there is a recording:
    # garble it, and the fields must still come out right, from the recording.
    Turn.objects.filter(call=call, speaker="caller").update(text="(unclear)")
    live = list(Turn.objects.filter(call=call).order_by("index").values_list("speaker", "text"))
    wav, _ = recording_for(scenario.lines)
    call_attach_recording(call=call, wav_bytes=wav)

    assert call_finalize(call_id=call.pk, end_reason="agent_end")
    analyzed(call)

    assert call.analysis_status == Call.AnalysisStatus.DONE, call.analysis_error
    transcript = CallTranscript.objects.get(call=call)
    assert transcript.model == "base" and transcript.beam_size == 5
    assert {s["speaker"] for s in transcript.segments} == {"caller", "agent"}
    starts = [s["start"] for s in transcript.segments]
    assert starts == sorted(starts)
    assert list(Turn.objects.filter(call=call).order_by("index").values_list("speaker", "text")) == live
    assert_extracted(call, scenario)
    assert call.summary and call.outcome and call.sentiment
    stages = {s.name: s for s in call.analysis_runs.get().stages.all()}
    assert all(s.status == "done" for s in stages.values()), {n: (s.status, s.error) for n, s in stages.items()}
    assert stages["transcribe"].detail["segments"] == len(transcript.segments)

    from tickets.models import Ticket

    if scenario is scenarios.EMERGENCY:
        ticket = Ticket.objects.get(call=call)
        assert ticket.priority == "urgent" and ticket.category == "emergency"
        assert CallEvent.objects.filter(call=call, name="notify_supervisors").count() == 1
    elif scenario is scenarios.SUPPORT:
        assert Ticket.objects.get(call=call).priority == "high"
    elif scenario is scenarios.LEAD:
        from customers.models import Appointment

        appointment = Appointment.objects.get(source_call=call)
        assert appointment.service.slug == "consultation" and appointment.customer.email == "maria.garcia@example.com"
    else:
        assert not Ticket.objects.filter(call=call).exists()


def test_a_worker_killed_mid_task_runs_it_again_without_a_second_ticket(processes):
    from tickets.models import Ticket

    processes.arm("act.after_ticket")
    call = call_with_turns(scenarios.EMERGENCY)
    call_finalize(call_id=call.pk, end_reason="agent_end")

    pid = wait_for(lambda: processes.fired_pid("act.after_ticket"), timeout=60, what="the act stage to commit its ticket")
    assert Ticket.objects.filter(call=call).count() == 1  # committed, the task not yet acknowledged
    os.kill(pid, signal.SIGKILL)
    analyzed(call)

    assert call.analysis_status == Call.AnalysisStatus.DONE, call.analysis_error
    act = AnalysisStage.objects.get(run__call=call, name="act")
    assert act.attempts == 2  # the message came back (acks_late + reject_on_worker_lost) and ran again
    assert act.detail["interrupted"] == 1
    assert Ticket.objects.filter(call=call).count() == 1
    assert CallEvent.objects.filter(call=call, idempotency_key="ticket").count() == 1
    assert CallEvent.objects.filter(call=call, name="notify_supervisors").count() == 1
    assert "exited with 'signal 9 (SIGKILL)'" in processes.worker.tail(200)


def test_a_call_that_ends_while_redis_is_down_is_analyzed_when_it_returns(processes):
    call = call_with_turns(scenarios.CHECK_IN)
    processes.redis.stop()
    try:
        started = time.monotonic()
        call_finalize(call_id=call.pk, end_reason="agent_end")
        ended_in = time.monotonic() - started
        run = AnalysisRun.objects.get(call=call)
        assert run.dispatched_at is None and run.dispatch_attempts == 1 and run.dispatch_error
        assert ended_in < 5, f"ending the call waited {ended_in:.1f}s on the missing broker"
        time.sleep(2)
        run.refresh_from_db()
        assert run.status == AnalysisRun.Status.PENDING  # nothing can run it while Redis is away
    finally:
        processes.redis.start()
    analyzed(call, timeout=90)

    assert call.analysis_status == Call.AnalysisStatus.DONE, call.analysis_error
    run.refresh_from_db()
    assert run.dispatched_at is not None and run.dispatch_attempts >= 2
    assert call.structured_data["driver_status"] == "delayed"


def test_two_end_of_call_signals_make_one_run(processes):
    call = call_with_turns(scenarios.CHECK_IN)
    results = []

    def end(reason: str) -> None:
        try:
            results.append(call_finalize(call_id=call.pk, end_reason=reason))
        finally:
            connection.close()

    threads = [threading.Thread(target=end, args=(r,)) for r in ("caller_hangup", "agent_end")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    pipeline_schedule(call=Call.objects.get(pk=call.pk))  # a third, late signal
    analyzed(call)

    assert sorted(results) == [False, True]
    assert AnalysisRun.objects.filter(call=call).count() == 1
    assert set(AnalysisStage.objects.filter(run__call=call).values_list("attempts", flat=True)) == {1}
    time.sleep(1.5)  # a sweep or two later, still one run, each stage run once
    assert set(AnalysisStage.objects.filter(run__call=call).values_list("attempts", flat=True)) == {1}


class Receiver(BaseHTTPRequestHandler):
    secret = ""
    log: list[dict] = []
    lock = threading.Lock()

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        valid = webhook_signature_verify(secret=self.secret, header=self.headers.get("X-VoiceCRM-Signature", ""),
                                         body=body)
        with self.lock:
            first = not self.log
            status = 500 if first else (200 if valid else 400)
            self.log.append({"event": json.loads(body)["type"], "id": json.loads(body)["id"], "valid": valid,
                             "status": status, "sha": hashlib.sha256(body).hexdigest()})
        self.send_response(status)
        self.end_headers()
        self.wfile.write(b"ok" if status == 200 else b"try again")

    def log_message(self, *args) -> None:
        pass


def test_the_webhook_receiver_gets_every_event_once_though_its_first_answer_was_500(processes):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        endpoint = WebhookEndpoint.objects.create(
            name="Loopback", url=f"http://127.0.0.1:{server.server_port}/hook",
            events=["call.started", "call.ended", "call.analyzed", "ticket.created"],
        )
        Receiver.secret, Receiver.log = endpoint.secret, []
        call = call_with_turns(scenarios.EMERGENCY)  # call.started goes out after call_start commits
        call_finalize(call_id=call.pk, end_reason="agent_end")
        analyzed(call)

        def all_accepted():
            accepted = {r["event"] for r in Receiver.log if r["status"] == 200}
            return accepted >= {"call.started", "call.ended", "call.analyzed", "ticket.created"}

        wait_for(all_accepted, timeout=30, what="every event to be accepted")
        time.sleep(2)  # room for any duplicate to show up
    finally:
        server.shutdown()
        server.server_close()

    log = Receiver.log
    assert all(r["valid"] for r in log), log
    assert log[0]["status"] == 500
    accepted = [r["id"] for r in log if r["status"] == 200]
    assert len(accepted) == len(set(accepted)) == 4, log
    retried = [r for r in log if r["id"] == log[0]["id"]]
    assert [r["status"] for r in retried] == [500, 200] and retried[0]["sha"] == retried[1]["sha"]
    deliveries = WebhookDelivery.objects.filter(endpoint=endpoint)
    assert deliveries.count() == 4 and set(deliveries.values_list("status", flat=True)) == {"succeeded"}
    first = deliveries.get(event_id=log[0]["id"])
    assert first.attempts == 2
    assert list(first.attempt_log.values_list("response_status", flat=True)) == [500, 200]
