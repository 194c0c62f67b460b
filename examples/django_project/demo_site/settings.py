"""The smallest settings a Django project serving one view needs. The toolkit's
middleware is not here: it wraps the WSGI application in ``wsgi.py``."""

import os

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "demo-only-django-secret-key")
DEBUG = False
ALLOWED_HOSTS = ["localhost", "127.0.0.1", "testserver"]
ROOT_URLCONF = "demo_site.urls"
INSTALLED_APPS: list[str] = []
MIDDLEWARE: list[str] = []
USE_TZ = True
