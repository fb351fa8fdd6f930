"""The project over WSGI, for serving the REST API and pages with gunicorn (docs/benchmarks.md, "REST API").

daphne (voicecrm/asgi.py) serves the WebSockets of live calls; plain HTTP is cheaper under a WSGI
server with a worker process per core: daphne runs every request in a thread of its own on one
process (one core), and the per-request database connection that forces.

    gunicorn --workers 2 --threads 4 --worker-class gthread voicecrm.wsgi:application
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voicecrm.settings")
application = get_wsgi_application()
