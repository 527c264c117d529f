"""Score an AVA detection result CSV with the official frame-mAP@0.5IoU protocol (any toolkit's file).

    python scripts/ava_eval.py --gt GT.csv --detections DET.csv --label_map MAP.pbtxt \
        [--exclude EXCL.csv] [--iou 0.5] [--capacity 50] [--output OUT.json]

GT: ``video_id,timestamp,x1,y1,x2,y2,action_id[,person_id]``; detections:
``video_id,timestamp,x1,y1,x2,y2,action_id,score`` (normalised boxes; ``902`` and ``0902`` are the same
keyframe).  Prints the mAP and per-class AP; OUT.json holds ``{"mAP", "per_class": {name: AP}, ...}``.
Rules: paddlevideo/metrics/ava.py (the official ActivityNet get_ava_performance.py, step for step).
``--capacity 50`` (default) keeps each keyframe's 50 best detections as the official script does; ``--capacity 0``
keeps every row (the number PaddleVideo's and mmaction2's copies of the evaluator give).  Malformed rows are skipped
with a warning naming file:line and counted in ``skipped_rows``.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from paddlevideo.annotations.ava import Problems  # noqa: E402
from paddlevideo.metrics.ava import evaluate_files  # noqa: E402
from paddlevideo.errors import run_cli  # noqa: E402
from paddlevideo.report import write_json  # noqa: E402


def main(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gt", required=True, help="ground-truth CSV")
    p.add_argument("--detections", required=True, help="detection result CSV")
    p.add_argument("--label_map", required=True, help="label-map pbtxt (the evaluated classes)")
    p.add_argument("--exclude", default=None, help="excluded timestamps CSV")
    p.add_argument("--iou", type=float, default=0.5, help="matching IoU (default 0.5)")
    p.add_argument("--capacity", type=int, default=50,
                   help="detections kept per keyframe (default 50: the official evaluation; 0: no cap, as "
                        "PaddleVideo/mmaction2)")
    p.add_argument("--output", default=None, help="write the result JSON here")
    p.add_argument("--debug", action="store_true")
    a = p.parse_args(argv)
    problems = Problems()
    res = evaluate_files(a.gt, a.detections, a.label_map, a.exclude, a.iou, problems, a.capacity)
    for name, ap in sorted(res["per_class"].items(), key=lambda kv: -kv[1]):
        print("  AP@{}IOU  {:<40s} {:.4f}".format(a.iou, name, ap))
    if res["classes_without_gt"]:
        print("  (no ground truth, not in the mean: {})".format(", ".join(res["classes_without_gt"])))
    print("frame-mAP@{}IOU: {}  (capacity {}; {} classes with GT, {} GT keyframes, {} detection keyframes{})".format(
        a.iou, "n/a" if res["mAP"] is None else "{:.6f}".format(res["mAP"]),
        "{} per keyframe".format(a.capacity) if a.capacity else "none", len(res["per_class"]),
        res["num_gt_keyframes"], res["num_detection_keyframes"],
        ", {} rows skipped: {}".format(problems.total(), problems.summary()) if problems.total() else ""))
    if a.output:
        write_json(a.output, res)
    return 0


if __name__ == "__main__":
    run_cli(main)
