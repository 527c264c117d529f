"""Alias: the helpers ``paddlevideo.engine.common`` held, re-exported from their homes since the split."""
from ..config import label_map_path, label_names  # noqa: F401
from ..metrics.classification import combine_views, log_softmax, softmax, topk_correct  # noqa: F401
from ..report import log, warn, write_json  # noqa: F401
from ..runtime.batches import per_video, resolve_weights, run_views, samples_per_batch, set_device  # noqa: F401
