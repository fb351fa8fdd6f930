"""The three supervisor-console roles, as auth groups and model permissions.

Supervisor: everything. Agent: works customers, tickets and appointments; reads calls.
Viewer: reads everything. Applied by data migrations, so a new model gets its
permissions by a new migration that calls `roles_sync` again.
"""

from django.contrib.auth.management import create_permissions

CRM_APPS = ["customers", "calls", "tickets", "agents", "telephony", "voicecrm"]

AGENT_EDITS = {
    "customers": ["customer", "appointment"],
    "tickets": ["ticket", "ticketcomment"],
}

ROLE_NAMES = ("Supervisor", "Agent", "Viewer")


def _codenames_for_role(role: str, permissions) -> list:
    chosen = []
    for perm in permissions:
        app, model, action = perm.content_type.app_label, perm.content_type.model, perm.codename.split("_", 1)[0]
        if role == "Supervisor":
            chosen.append(perm)
        elif app not in CRM_APPS:
            continue
        elif action == "view":
            chosen.append(perm)
        elif role == "Agent" and model in AGENT_EDITS.get(app, []) and action in ("add", "change"):
            chosen.append(perm)
    return chosen


def roles_sync(apps, schema_editor=None) -> None:
    # Permissions are normally created after all migrations; make sure they exist now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    labels = CRM_APPS + ["auth", "authtoken"]
    permissions = list(Permission.objects.filter(content_type__app_label__in=labels).select_related("content_type"))
    for role in ROLE_NAMES:
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.set(_codenames_for_role(role, permissions))
