"""The post-call pipeline's stages, one module each, called by calls.postcall.pipeline.

transcribe  the stereo recording, per side, with the post-call Whisper model (queue "stt")
summarize   one to three sentences, an outcome and a sentiment
extract     the agent's extraction schema, filled and validated (queue "postcall")
act         escalation rules turned into tickets, appointments and customer updates
analytics   the agent's daily statistics, recomputed

The webhook stage lives in calls.webhooks. Every stage is idempotent: running it twice
leaves the same rows as running it once.
"""
