"""Settings for the flag overhead benchmark's servers: the project's, plus one loader."""

from chimney.settings import *  # noqa: F403
from chimney.settings import TEMPLATES

TEMPLATES = [{**TEMPLATES[0], "APP_DIRS": False, "OPTIONS": {**TEMPLATES[0]["OPTIONS"]}}]
TEMPLATES[0]["OPTIONS"]["loaders"] = [
    (
        "django.template.loaders.cached.Loader",
        [
            "bench._flags_templates.Loader",
            "django.template.loaders.filesystem.Loader",
            "django.template.loaders.app_directories.Loader",
        ],
    )
]
