"""Language understanding for the deterministic dialog engine. Pure Python, no ORM.

    from agents.nlu.intents import IntentRecognizer, recognize_intent   # what the caller wants
    from agents.nlu.entities import extract_phone, extract_datetime, ...  # typed values, or None
    from agents.nlu.normalize import normalize, words_to_digits          # ASR text clean-up

Build one `IntentRecognizer(extra_phrases=...)` per AgentConfig version and reuse it.
"""
