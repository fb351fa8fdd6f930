"""Speech engines: audio codecs and framing (audio), VAD and endpointing (vad), speech-to-text
(stt), text-to-speech (tts), engine registry by settings (registry), off-loop execution
(executor) and file helpers (files). Pure Python: no models, no database. See docs/speech.md."""
