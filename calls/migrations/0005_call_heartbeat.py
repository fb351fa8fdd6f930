from django.db import migrations, models


class Migration(migrations.Migration):
    """Live calls carry a heartbeat, so a sweep can finalize calls whose process died."""

    dependencies = [
        ("calls", "0004_roles_for_postcall_models"),
    ]

    operations = [
        migrations.AddField(
            model_name="call",
            name="heartbeat_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddIndex(
            model_name="call",
            index=models.Index(condition=models.Q(("status", "in_progress")), fields=["heartbeat_at"],
                               name="call_live_heartbeat"),
        ),
    ]
