"""Intent recognition: accuracy on the labelled caller utterances, and its rules."""

import pytest

from agents.nlu.evaluation import evaluate, load_labelled_set
from agents.nlu.intents import INTENTS, UNKNOWN, IntentRecognizer, IntentResult, recognize_intent

pytestmark = []


@pytest.fixture(scope="module")
def recognizer() -> IntentRecognizer:
    return IntentRecognizer()


@pytest.fixture(scope="module")
def labelled():
    return load_labelled_set()


def test_labelled_set_is_big_enough_and_covers_every_intent(labelled):
    everything = labelled["tuning"] + labelled["holdout"]
    assert len(everything) >= 220
    assert sum(e.noisy for e in everything) >= 70
    assert 0.2 <= len(labelled["holdout"]) / len(everything) <= 0.3
    assert {e.intent for e in everything} == set(INTENTS)
    assert {e.intent for e in labelled["holdout"]} == set(INTENTS)


@pytest.mark.parametrize("section", ["tuning", "holdout"])
def test_accuracy_on_labelled_utterances(recognizer, labelled, section):
    report = evaluate(recognizer, labelled[section])
    errors = [f"{e.intent} -> {got}: {e.text!r}" for e, got in report.errors]
    assert report.accuracy >= 0.95, errors


def test_accuracy_on_noisy_asr_variants(recognizer, labelled):
    noisy = [e for e in labelled["tuning"] + labelled["holdout"] if e.noisy]
    assert evaluate(recognizer, noisy).accuracy >= 0.95


@pytest.mark.parametrize(("text", "expected"), [
    # negation: the action is not the intent
    ("I don't want to cancel, I just want to pay my bill", "payment"),
    ("no, I don't want to cancel", "deny"),
    ("I'm not trying to cancel, I need to change my appointment", "reschedule_appointment"),
    ("I don't want to cancel my appointment I want to move it", "reschedule_appointment"),
    ("I don't want your service anymore", "cancellation"),
    ("why can't I pay online", "payment"),  # "can't" is not a negated wish
    # disambiguation
    ("cancel my appointment", "cancel_appointment"),
    ("cancel my internet", "cancellation"),
    ("move my appointment to Friday", "reschedule_appointment"),
    ("I want to book an appointment", "book_appointment"),
    ("what's your next available appointment", "availability"),
    ("nobody showed up for my appointment", "complaint"),
    ("change my address", "update_details"),
    ("I need to change my plan", "new_service"),
    ("can I speak to someone about my bill", "human_agent"),
    # chit-chat gives way to a request
    ("hi, I'd like to pay my bill", "payment"),
    ("yes I want to cancel my appointment", "cancel_appointment"),
    # ASR damage
    ("can i get an appoint meant", "book_appointment"),
    ("cancel my sub scription", "cancellation"),
    ("represent a tive", "human_agent"),
    ("i need to council my appointment", "cancel_appointment"),
])
def test_rules(recognizer, text, expected):
    assert recognizer.recognize(text).intent == expected


@pytest.mark.parametrize("text", ["", "   ", "um uh", "(music playing)", "you", "thank you for watching",
                                  "purple monkey dishwasher", "asdf"])
def test_unknown(recognizer, text):
    assert recognizer.recognize(text).intent == UNKNOWN


def test_result_shape(recognizer):
    result = recognizer.recognize("I want to pay my bill")
    assert isinstance(result, IntentResult)
    assert result.intent == "payment"
    assert 0.0 < result.confidence <= 1.0
    assert result.scores["payment"] == max(result.scores.values())
    assert list(result.scores) == sorted(result.scores, key=result.scores.get, reverse=True)


def test_threshold_turns_weak_guesses_into_unknown():
    strict = IntentRecognizer(threshold=0.99)
    result = strict.recognize("I want to pay my bill")
    assert result.intent == UNKNOWN
    assert result.scores["payment"] > 0  # the scores still say what it might have been


def test_extra_phrases_add_a_new_intent():
    recognizer = IntentRecognizer(extra_phrases={"roadside_assistance": ["tow truck", "jump start", "locked * keys"]})
    assert recognizer.recognize("I need a tow truck on route nine").intent == "roadside_assistance"
    assert recognizer.recognize("can someone give me a jump start").intent == "roadside_assistance"
    assert recognizer.recognize("I locked my car keys in the car").intent == "roadside_assistance"
    assert "roadside_assistance" in recognizer.intents
    assert recognizer.recognize("what's my balance").intent == "billing_balance"  # built-ins unaffected


def test_extra_phrases_extend_a_built_in_intent():
    assert recognize_intent("my gizmo is acting weird").intent == UNKNOWN
    recognizer = IntentRecognizer(extra_phrases={"technical_support": ["acting weird"]})
    assert recognizer.recognize("my gizmo is acting weird").intent == "technical_support"


def test_extra_phrases_tolerate_asr_noise():
    recognizer = IntentRecognizer(extra_phrases={"warranty_claim": ["warranty claim"]})
    assert recognizer.recognize("um i want to make a warranty clam").intent == "warranty_claim"


def test_recognizers_do_not_share_state():
    IntentRecognizer(extra_phrases={"pizza": ["pepperoni"]})
    assert recognize_intent("pepperoni").intent == UNKNOWN
