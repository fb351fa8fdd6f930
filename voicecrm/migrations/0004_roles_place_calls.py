from django.db import migrations

from core.roles import roles_sync


class Migration(migrations.Migration):
    """Re-sync the roles: Supervisors and Agents may place outbound calls (calls.place_call)."""

    dependencies = [
        ("voicecrm", "0003_roles_chat_users_audit"),
        ("calls", "0007_outbound_calls"),
        ("agents", "0006_outbound_calls"),
    ]

    operations = [migrations.RunPython(roles_sync, migrations.RunPython.noop)]
