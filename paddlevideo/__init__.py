"""PaddleVideo-style video understanding on Paddle 3.x: TSN, TSM, StNet.

Public API::

    from paddlevideo import load_config, build_model, load_weights
    model = build_model(load_config("configs/tsm.yaml"))   # [N, T, 3*seglen, H, W] -> logits
"""
import contextlib
import io
import os
import sys
import warnings

# Paddle's dynamic graph runs on one CPU thread unless OMP_NUM_THREADS is set before
# `import paddle` (TSM-R50 training step measured at 20 s vs 11.7 s on 2 cores).  Paddle then
# prints a banner meant for data-parallel users on every import; we hide it (only it).
warnings.filterwarnings("ignore", message="No ccache found")
warnings.filterwarnings("ignore", message="When training, we now always track")
# Under paddle.distributed.launch the launcher's own `import paddle` leaves OMP_NUM_THREADS=1 in every
# worker's environment; the cores are split between the node's processes instead
# (PADDLEVIDEO_THREADS overrides both).
_local = int(os.environ.get("PADDLE_LOCAL_SIZE", "0") or 0)
if os.environ.get("PADDLEVIDEO_THREADS"):
    os.environ["OMP_NUM_THREADS"] = os.environ["PADDLEVIDEO_THREADS"]
elif _local > 1:
    os.environ["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // _local))
os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))
if "paddle" not in sys.modules:
    _err = io.StringIO()
    try:
        with contextlib.redirect_stderr(_err):
            import paddle  # noqa: F401
    finally:
        sys.stderr.write("".join(line for line in _err.getvalue().splitlines(True)
                                 if "OMP_NUM_THREADS" not in line))

from .config import load_config  # noqa: E402
from .errors import UserError  # noqa: E402
from .models import build_model  # noqa: E402
from .weights import load_weights  # noqa: E402

__all__ = ["load_config", "build_model", "load_weights", "UserError"]
