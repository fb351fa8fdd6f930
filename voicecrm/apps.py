from django.apps import AppConfig


class VoiceCrmConfig(AppConfig):
    """Project-wide pieces: roles, health checks, demo data."""

    name = "voicecrm"
    verbose_name = "VoiceCRM"
