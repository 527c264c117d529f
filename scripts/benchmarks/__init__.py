"""The benchmark sections, one module each, and their registry.  A section module has ``run(args, results)`` (the
parent side: starts its measurements, each in a child process, and stores them under its JSON key) and
``CHILDREN`` (``{kind: function}``: what a child ``--child KIND ...`` computes)."""
from . import ava, ava_eval, live, memory, models, online, precision, predict, reader, serve, training

SECTIONS = {"models": models, "reader": reader, "predict": predict, "training": training, "precision": precision,
            "ava": ava, "online": online, "memory": memory, "ava_eval": ava_eval, "live": live,
            "serve": serve}
CHILDREN = {kind: fn for module in SECTIONS.values() for kind, fn in module.CHILDREN.items()}
DEFAULT = "models,reader,predict,training,precision"
