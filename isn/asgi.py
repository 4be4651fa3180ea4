from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

from isn.env import check_settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "isn.settings")
check_settings()
application = get_asgi_application()
