from django.apps import AppConfig


class TelephonyConfig(AppConfig):
    name = "telephony"

    def ready(self) -> None:
        from calls.sweeps import embedded_sweep_register  # noqa: PLC0415 - apps are loaded by now
        from telephony.outbound import outbound_sweep  # noqa: PLC0415
        from telephony.twilio import checks  # noqa: F401, PLC0415 - registers the Twilio system checks

        # Embedded mode has no beat: the serving process dials due retries itself.
        embedded_sweep_register(outbound_sweep)
