"""Alias: ``paddlevideo.engine.tasks`` is :mod:`paddlevideo.tasks` (see :mod:`paddlevideo.engine`)."""
import importlib
import sys

sys.modules[__name__] = importlib.import_module("paddlevideo.tasks")
