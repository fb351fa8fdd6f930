"""The three supervisor-console roles, as auth groups and model permissions.

Supervisor: every CRM permission, user administration (within its own permissions: see
voicecrm/admin.py) and the audit log; never API tokens, groups or raw permissions, which only
superusers manage, so a Supervisor cannot grant itself more than it has.
Agent: works customers, tickets and appointments; reads calls; places outbound calls; chats with
agents.
Viewer: reads everything, changes nothing.
Applied by data migrations, so a new model gets its permissions by a new migration that calls
`roles_sync` again.
"""

from django.contrib.auth.management import create_permissions

CRM_APPS = ["customers", "calls", "tickets", "agents", "telephony", "voicecrm"]

AGENT_EDITS = {
    "customers": ["customer", "appointment"],
    "tickets": ["ticket", "ticketcomment"],
}

# Permissions that belong to no model action: (app label, model, codename, name).
# chat_with_agent: use the staff text chat (the agent's tools then act as the caller, see
# agents/permissions.py); chat_as_caller: pose as any caller number in it.
CUSTOM_PERMISSIONS = [
    ("agents", "agentconfig", "chat_with_agent", "Can chat with agents"),
    ("agents", "agentconfig", "chat_as_caller", "Can chat with agents as any caller number"),
    # place_call: have an agent phone someone (POST /api/calls/, the customers' "Call now" action).
    ("calls", "call", "place_call", "Can place outbound calls"),
]
AGENT_EXTRAS = {"agents": ["chat_with_agent"], "calls": ["place_call"]}

# Outside the CRM: what a Supervisor may do there (users within its own permissions).
SUPERVISOR_EXTRAS = {
    "auth": ["add_user", "change_user", "delete_user", "view_user", "view_group"],
    "auditlog": ["view_logentry"],
}

ROLE_NAMES = ("Supervisor", "Agent", "Viewer")


def _codenames_for_role(role: str, permissions) -> list:
    chosen = []
    for perm in permissions:
        app, model, action = perm.content_type.app_label, perm.content_type.model, perm.codename.split("_", 1)[0]
        if app not in CRM_APPS:
            if role == "Supervisor" and perm.codename in SUPERVISOR_EXTRAS.get(app, []):
                chosen.append(perm)
        elif role == "Supervisor" or action == "view":
            chosen.append(perm)
        elif role == "Agent" and model in AGENT_EDITS.get(app, []) and action in ("add", "change"):
            chosen.append(perm)
        elif role == "Agent" and perm.codename in AGENT_EXTRAS.get(app, []):
            chosen.append(perm)
    return chosen


def roles_sync(apps, schema_editor=None) -> None:
    """Create the role groups and set their permissions; `apps` is a migration's or the live registry."""
    # Permissions are normally created after all migrations; make sure they exist now.
    for app_config in apps.get_app_configs():
        models_module = getattr(app_config, "models_module", None)
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = models_module

    ContentType = apps.get_model("contenttypes", "ContentType")
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for app_label, model, codename, name in CUSTOM_PERMISSIONS:
        content_type, _ = ContentType.objects.get_or_create(app_label=app_label, model=model)
        Permission.objects.get_or_create(content_type=content_type, codename=codename, defaults={"name": name})
    labels = CRM_APPS + list(SUPERVISOR_EXTRAS)
    permissions = list(Permission.objects.filter(content_type__app_label__in=labels).select_related("content_type"))
    for role in ROLE_NAMES:
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.set(_codenames_for_role(role, permissions))
