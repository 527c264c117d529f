"""Alias: ``paddlevideo.engine.online`` is :mod:`paddlevideo.apps.online` (see :mod:`paddlevideo.engine`)."""
import importlib
import sys

sys.modules[__name__] = importlib.import_module("paddlevideo.apps.online")
