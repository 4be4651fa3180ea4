from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

from isn.env import check_settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "isn.settings")
check_settings()
application = get_wsgi_application()
