from django.db import migrations

from core.roles import roles_sync


class Migration(migrations.Migration):
    """Re-sync the roles: the chat permissions (Agent: chat; Supervisor: chat, and as any caller),
    Supervisors manage users but no longer API tokens, groups or permissions, and read the audit log."""

    dependencies = [
        ("voicecrm", "0002_api_tokens_hashed"),
        ("calls", "0004_roles_for_postcall_models"),
        ("agents", "0003_condition_operators_one_language"),
        ("auditlog", "0017_add_actor_email"),
    ]

    operations = [migrations.RunPython(roles_sync, migrations.RunPython.noop)]
