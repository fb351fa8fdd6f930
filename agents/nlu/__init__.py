"""Language understanding for the deterministic dialog engine: normalization, entities, intents.

Pure Python (no ORM): the dialog engine passes text in and gets typed values out.
"""
