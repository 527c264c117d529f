"""Messages and small outputs every layer writes: log lines (stdout), warnings (stderr), JSON files.

Imports nothing of ours (the bottom layer, with :mod:`.config`, :mod:`.errors`, :mod:`.quiet`, :mod:`.download`)."""
import json
import os
import sys


def log(msg):
    print(msg, flush=True)


def warn(msg):
    print("warning: " + msg, file=sys.stderr, flush=True)


def write_json(path, obj):
    """Write ``obj`` as indented JSON to ``path``, creating its folder."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)
