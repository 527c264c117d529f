"""AVA detection: the official frame-mAP rules on hand-computed cases, annotation checks, the released layout,
the RoI head against a NumPy reference, and train → eval → export → predict on a tiny synthetic set."""
import csv
import json
import math
import os
import pickle
import subprocess
import sys

import numpy as np
import paddle
import pytest

from conftest import DATA, ROOT, released_layout_file, run_cli
from paddlevideo import UserError, build_model, load_config, load_weights
from paddlevideo.data.ava import Problems, load_records, read_gt, read_label_map
from paddlevideo.engine.ava_eval import evaluate_files
from paddlevideo.models.ava import SlowFastAVA

sys.path.insert(0, os.path.join(ROOT, "data", "dataset", "synthetic"))
import make_synthetic_ava  # noqa: E402

AVA = os.path.join(ROOT, "configs", "slowfast_ava.yaml")
DEMO = os.path.join(ROOT, "configs", "demo_detection.yaml")


def write_csv(path, rows):
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows(rows)
    return str(path)


@pytest.fixture
def label_map(tmp_path):
    p = tmp_path / "map.pbtxt"
    p.write_text('item {\n  name: "stand"\n  id: 1\n}\nitem {\n  name: "talk"\n  id: 2\n}\n'
                 'item {\n  name: "sit"\n  id: 4\n}\n')
    return str(p)


def score(tmp_path, label_map, gt, det, exclude=None, iou=0.5, capacity=0):
    g = write_csv(tmp_path / "gt.csv", gt)
    d = write_csv(tmp_path / "det.csv", det)
    e = write_csv(tmp_path / "ex.csv", exclude) if exclude else None
    return evaluate_files(g, d, label_map, e, iou, capacity=capacity)


def test_frame_map_rules_against_hand_computed_cases(tmp_path, label_map):
    A, B = [0.125, 0.125, 0.625, 0.625], [0.75, 0.75, 0.875, 0.875]        # dyadic: IoU 0.5 is exact
    gt = [["v", "0902"] + A + [1, 0], ["v", "0902"] + B + [1, 1], ["v", "0903"] + A + [2, 0],
          ["v", "0904"] + A + [1, 0], ["v", "0902"] + A + [3, 0]]          # 3: not in the label map
    # class 1: 3 GT (0902 A, 0902 B, 0904 A); 0904 is excluded -> 2 GT.  Detections by score:
    # 0.9 A@0902 TP; 0.8 duplicate A@0902 FP (GT taken); 0.7 on 0905 (no GT) FP; 0.6 B@902 TP.
    # P = 1, 1/2, 1/3, 1/2 at R = .5, .5, .5, 1 -> AP = .5*1 + .5*.5 = 0.75
    det = [["v", "902"] + A + [1, 0.9], ["v", "902"] + A + [1, 0.8], ["v", "905"] + A + [1, 0.7],
           ["v", "0902"] + B + [1, 0.6], ["v", "0904"] + A + [1, 0.99],        # excluded key: ignored
           ["v", "0902"] + A + [3, 0.99]]                                    # class outside the map: dropped
    # class 2: GT A@0903. Detection at IoU exactly 0.5 (box half the GT's area inside it) -> TP, AP 1
    half = [0.125, 0.125, 0.375, 0.625]
    det += [["v", "0903"] + half + [2, 0.5]]
    res = score(tmp_path, label_map, gt, det, exclude=[["v", "0904"]])
    assert res["per_class"] == {"stand": pytest.approx(0.75, abs=1e-12), "talk": pytest.approx(1.0, abs=1e-12)}
    assert res["classes_without_gt"] == ["sit"]              # no GT: not in the mean (not 0)
    assert res["mAP"] == pytest.approx(0.875, abs=1e-12)
    # the IoU threshold is inclusive; just below it the talk detection is a miss
    det2 = det[:-1] + [["v", "0903", 0.125, 0.125, 0.3749, 0.625, 2, 0.5]]
    assert score(tmp_path, label_map, gt, det2)["per_class"]["talk"] == 0.0
    # a class with GT and no detection has AP 0 and counts in the mean
    res3 = score(tmp_path, label_map, gt, [r for r in det if r[6] != 2], exclude=[["v", "0904"]])
    assert res3["per_class"]["talk"] == 0.0 and res3["mAP"] == pytest.approx(0.375, abs=1e-12)
    # without the exclusion the 0904 GT counts and its 0.99 detection is first: P 1, 1, 2/3, 2/4, 3/5 -> AP
    res4 = score(tmp_path, label_map, gt, det)
    assert res4["per_class"]["stand"] == pytest.approx(1 / 3 + 1 / 3 + (1 / 3) * 0.6, abs=1e-12)


def test_official_capacity_of_50_detections_per_keyframe(tmp_path, label_map):
    """get_ava_performance.py reads detections with capacity 50: a min-heap of (score, action, y1, x1, y2, x2),
    replaced only by a strictly greater score, so ties pop the smallest tuple; label-map filter first."""
    A, C = [0.125, 0.125, 0.625, 0.625], [0.75, 0.75, 0.875, 0.875]        # C: far from A (IoU 0)
    gt = [["v", "0902"] + A + [1, 0], ["v", "0902"] + A + [4, 0], ["v", "0903"] + A + [2, 0]]
    talk = [["v", "0902"] + C + [2, 0.9]]                                   # FPs of class 2 (its GT is on 0903)
    outside = [["v", "0902"] + A + [3, 0.99]] * 60                          # not in the map: never take a place
    # heap after 50 rows: stand@C 0.3, stand@A 0.3, sit@A 0.3, 47 talk 0.9.  Then a talk 0.9 pops the smallest
    # tuple (0.3, 1, 0.125, ...) = stand@A (y1 0.125 < 0.75), and a stand@A 0.3 ties the minimum: not taken.
    det = outside + [["v", "0902"] + C + [1, 0.3], ["v", "0902"] + A + [1, 0.3], ["v", "0902"] + A + [4, 0.3]]
    det += talk * 48 + [["v", "0902"] + A + [1, 0.3], ["v", "0903"] + A + [2, 0.2]]
    capped = score(tmp_path, label_map, gt, det, capacity=50)
    # stand: only the FP at C is left -> 0; sit survives -> 1; talk: 48 FPs at 0.9, then the TP at 0.2 on 0903
    # (another key: its own heap) -> P = 1/49 at R = 1
    assert capped["capacity"] == 50
    assert capped["per_class"] == {"stand": 0.0, "sit": 1.0, "talk": pytest.approx(1 / 49, abs=1e-12)}
    uncapped = score(tmp_path, label_map, gt, det, capacity=0)
    # without the cap stand@A 0.3 is there (TP; the FP at C ties it: the order argsort gives decides its AP)
    assert uncapped["capacity"] == 0 and uncapped["per_class"]["stand"] > 0
    assert uncapped["per_class"]["sit"] == 1.0
    # fewer than 50 rows on a key: nothing changes
    few = det[60:63] + [["v", "0903"] + A + [2, 0.2]]
    a, b = (score(tmp_path, label_map, gt, few, capacity=c) for c in (50, 0))
    assert a.pop("capacity") == 50 and b.pop("capacity") == 0 and a == b


def test_capacity_matches_a_plain_transcription_of_the_official_reader(tmp_path, label_map):
    """Random rows with many ties: the rows kept per key equal a list-based transcription of the official
    read_csv (no heapq), in the same order."""
    from paddlevideo.engine.ava_eval import read_csv

    def official(rows, whitelist, capacity):
        entries = {}
        for r in rows:
            action = int(r[6])
            if whitelist and action not in whitelist:
                continue
            key = "{},{:04d}".format(r[0], int(r[1]))
            t = (float(r[7]), action, float(r[3]), float(r[2]), float(r[5]), float(r[4]))
            kept = entries.setdefault(key, [])
            if capacity < 1 or len(kept) < capacity:
                kept.append(t)
            elif t[0] > min(kept)[0]:
                kept.remove(min(kept))
                kept.append(t)
        return {k: sorted(sorted(v), key=lambda t: -t[0]) for k, v in entries.items()}
    rng = np.random.RandomState(3)
    rows = [["v", str(900 + rng.randint(3))] + list(np.round(rng.rand(4), 1)) + [int(rng.randint(1, 5)),
                                                                                round(rng.rand(), 1)]
            for _ in range(700)]
    path = write_csv(tmp_path / "r.csv", rows)
    for cap in (0, 50, 7):
        boxes, labels, scores = read_csv(path, {1, 2, 4}, Problems(), cap)
        want = official(rows, {1, 2, 4}, cap)
        assert set(boxes) == set(want)
        for k in want:
            assert len(scores[k]) == (len(want[k]) if cap == 0 else min(cap, len(want[k])))
            # the multiset of kept rows is exactly the official one; the order is descending score
            got = sorted(zip(scores[k], labels[k], *zip(*boxes[k])))
            assert got == sorted(want[k])
            assert scores[k] == sorted(scores[k], reverse=True)


def test_scorer_cli_and_bad_rows_are_counted(tmp_path, label_map):
    A = [0.1, 0.1, 0.5, 0.5]
    g = write_csv(tmp_path / "gt.csv", [["v", "0902"] + A + [1, 0], ["v", "09x2"] + A + [1, 0]])
    d = write_csv(tmp_path / "det.csv", [["v", "902"] + A + [1, 0.9], ["v", "902", 1]])
    out = tmp_path / "o.json"
    p = run_cli("scripts/ava_eval.py", "--gt", g, "--detections", d, "--label_map", label_map, "--output", out)
    res = json.loads(out.read_text())
    assert res["mAP"] == 1.0 and res["per_class"] == {"stand": 1.0} and res["skipped_rows"] == 2
    assert res["capacity"] == 50 and "capacity 50 per keyframe" in p.stdout
    assert "gt.csv:2" in p.stderr and "det.csv:2" in p.stderr
    bad = run_cli("scripts/ava_eval.py", "--gt", g, "--detections", str(tmp_path / "nope.csv"), "--label_map",
                  label_map, check=False)
    assert bad.returncode == 2 and bad.stderr.strip().startswith("error:") and "Traceback" not in bad.stderr


def test_annotation_problems_are_skipped_counted_and_named(tmp_path):
    data = tmp_path / "syn"
    make_synthetic_ava.make(str(data), 2, 0, 0, seed=1)
    rows = list(csv.reader(open(data / "train.csv")))
    rows += [["train_0000", "0902", "0.1", "0.1", "1.3", "0.5", "1", "9"],       # outside [0, 1]
             ["train_0000", "0902", "0.5", "0.1", "0.2", "0.5", "1", "9"],       # inverted
             ["train_0000", "0902", "0.1"],                                       # malformed
             ["nosuchvideo", "0902", "0.1", "0.1", "0.5", "0.5", "1", "9"],      # unknown video
             ["train_0000", "1799", "0.1", "0.1", "0.5", "0.5", "1", "9"],       # frames missing
             ["train_0001", "0950", "0.1", "0.1", "0.5", "0.5", "1", "9"]]       # frames missing too
    write_csv(data / "bad.csv", rows)
    cfg = load_config(DEMO, ["TRAIN.filelist={}".format(data / "bad.csv"), "TRAIN.data_root={}".format(data / "frames"),
                             "TRAIN.proposal_file={}".format(data / "train_proposals.pkl"),
                             "TRAIN.exclude_file={}".format(data / "train_excluded.csv")])
    problems = Problems(quiet=True)
    records, _ = load_records(cfg.mode("train"), problems, train=True)
    assert problems.counts == {"boxes outside [0, 1] or inverted": 2, "malformed rows": 1,
                               "unknown videos (no frames under data_root)": 1, "missing frames": 2}
    assert len(records) == 6                              # 2 videos x 3 keyframes, none excluded (v % 5 != 4)
    gt = read_gt(str(data / "train.csv"), 9, Problems(quiet=True))
    multi = [labels.sum(1).max() for _, _, _, labels in gt.values()]
    assert max(multi) == 2 and all(len(b) == len(lab) for _, _, b, lab in gt.values())   # a multi-label actor
    names, ids = read_label_map(str(data / "label_map.pbtxt"))
    assert ids == set(range(1, 9)) and names[1] == "move right" and names[2] == "move left"


def test_released_layout_loads_key_for_key_and_kinetics_finetune_says_what_it_skipped(tmp_path, capfd):
    model = build_model(load_config(AVA))
    state = released_layout_file(model, "SlowFast_AVA", tmp_path / "SlowFastRCNN_AVA.pdparams")
    # a Kinetics 8x8 file: classifier head.projection and lateral kernels of temporal size 7
    k400 = {n: a for n, a in state.items() if not n.startswith("roi_head.")}
    for n in list(k400):
        if n.endswith("_fuse._conv_f2s.weight"):
            s = k400[n].shape
            k400[n] = np.zeros((s[0], s[1], 7, 1, 1), "float32")
    k400["head.projection.weight"] = np.zeros((2304, 400), "float32")
    k400["head.projection.bias"] = np.zeros((400,), "float32")
    kpath = str(tmp_path / "SlowFast_8x8.pdparams")
    paddle.save(k400, kpath)
    fresh = build_model(load_config(AVA))
    capfd.readouterr()
    load_weights(fresh, kpath, allow_classifier_mismatch=True)
    err = capfd.readouterr().err
    assert "skipped its classifier" in err and "4 lateral kernels of another temporal size" in err
    assert np.array_equal(fresh.state_dict()["backbone.s2.pathway0_res0.branch2.a.weight"].numpy(),
                          state["backbone.s2.pathway0_res0.branch2.a.weight"])


def _bilinear(f, y, x):
    """detectron2's ROIAlign sampling of one point on ``f [C, H, W]``."""
    h, w = f.shape[1:]
    if y < -1.0 or y > h or x < -1.0 or x > w:
        return np.zeros(f.shape[0])
    y, x = max(y, 0.0), max(x, 0.0)
    y0, x0 = int(y), int(x)
    if y0 >= h - 1:
        y0 = y1 = h - 1
        y = float(y0)
    else:
        y1 = y0 + 1
    if x0 >= w - 1:
        x0 = x1 = w - 1
        x = float(x0)
    else:
        x1 = x0 + 1
    ly, lx = y - y0, x - x0
    return ((1 - ly) * (1 - lx) * f[:, y0, x0] + (1 - ly) * lx * f[:, y0, x1] + ly * (1 - lx) * f[:, y1, x0]
            + ly * lx * f[:, y1, x1])


def numpy_head(slow, fast, boxes, weight, bias, out=8, scale=1 / 16):
    """The reference head in float64: temporal mean, slow-first concat, aligned RoIAlign with ceil(roi/out)
    samples per bin, spatial max, fc."""
    fmap = np.concatenate([slow.mean(axis=2), fast.mean(axis=2)], axis=1)[0].astype(np.float64)
    rows = []
    for x1, y1, x2, y2 in boxes:
        x1, y1, x2, y2 = x1 * scale - 0.5, y1 * scale - 0.5, x2 * scale - 0.5, y2 * scale - 0.5
        bh, bw = (y2 - y1) / out, (x2 - x1) / out
        gh, gw = math.ceil((y2 - y1) / out), math.ceil((x2 - x1) / out)
        bins = np.zeros((fmap.shape[0], out, out))
        for i in range(out):
            for j in range(out):
                acc = 0
                for iy in range(gh):
                    for ix in range(gw):
                        acc = acc + _bilinear(fmap, y1 + i * bh + (iy + 0.5) * bh / gh, x1 + j * bw + (ix + 0.5) * bw / gw)
                bins[:, i, j] = acc / (gh * gw)
        rows.append(bins.max(axis=(1, 2)))
    return np.stack(rows) @ weight.astype(np.float64) + bias


def test_roi_head_equals_a_numpy_reference_and_empty_boxes_give_the_bias():
    paddle.seed(0)
    model = SlowFastAVA(num_classes=5, width=8, alpha=4, beta=4, blocks=[1, 1, 1, 1], dropout_ratio=0.5)
    model.eval()
    x = paddle.to_tensor(np.random.RandomState(1).standard_normal((1, 8, 3, 64, 96)).astype("float32"))
    boxes = np.array([[3.0, 5.0, 60.0, 50.0], [40.0, 10.5, 95.0, 63.0], [20.0, 20.0, 20.0, 40.0]], "float32")
    with paddle.no_grad():
        logits = model(x, paddle.to_tensor(boxes), paddle.to_tensor([3], "int32")).numpy()
        slow, fast = model.pathways(x)
    assert slow.shape[2:] == [2, 4, 6] and fast.shape[2:] == [8, 4, 6]          # output stride 16
    fc = model.roi_head.bbox_head.fc_cls
    ref = numpy_head(slow.numpy(), fast.numpy(), boxes[:2], fc.weight.numpy(), fc.bias.numpy())
    np.testing.assert_allclose(logits[:2], ref, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(logits[2], fc.bias.numpy(), atol=1e-7)         # zero-area box


def test_loss_only_on_labelled_rois():
    logits = paddle.to_tensor([[0.0, 2.0, -1.0], [0.0, 5.0, 5.0], [9.0, 0.5, 0.2]])
    t = paddle.to_tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    z = np.array([[2.0, -1.0], [0.5, 0.2]])
    y = np.array([[1.0, 0.0], [0.0, 1.0]])
    ref = np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))))
    assert float(SlowFastAVA.loss(logits, t)) == pytest.approx(ref, rel=1e-6)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny synthetic AVA set and a detector trained on it for one epoch (reduced demo config)."""
    d = tmp_path_factory.mktemp("ava")
    make_synthetic_ava.make(str(d / "data"), 3, 0, 2, seed=3)
    over = ["MODEL.label_map={}".format(d / "data" / "label_map.pbtxt"), "MODEL.width=8", "TRAIN.epoch=1",
            "TRAIN.batch_size=3"]
    for mode, split in (("TRAIN", "train"), ("TEST", "test")):
        over += ["{}.filelist={}".format(mode, d / "data" / (split + ".csv")),
                 "{}.proposal_file={}".format(mode, d / "data" / (split + "_proposals.pkl")),
                 "{}.exclude_file={}".format(mode, d / "data" / (split + "_excluded.csv")),
                 "{}.data_root={}".format(mode, d / "data" / "frames")]
    args = sum((["-o", o] for o in over), [])
    run_cli("train.py", "--config", DEMO, "--save_dir", d / "ck", "--valid_interval", "0", *args)
    return d, args, str(d / "ck" / "SLOWFAST_AVA_final.pdparams")


def test_train_eval_writes_the_official_number_and_backends_agree(tiny):
    d, args, w = tiny
    outs = {}
    for backend in ("dygraph", "onnxruntime"):
        run_cli("eval.py", "--config", DEMO, "--weights", w, "--backend", backend, "--save_dir", d / backend,
                "--cache_dir", d / "cache", *args)
        outs[backend] = json.loads((d / backend / "SLOWFAST_AVA_eval.json").read_text())
        assert (d / backend / "SLOWFAST_AVA_per_class_ap.png").stat().st_size > 1000
    res = outs["dygraph"]
    assert res["backend"] == "dygraph" and outs["onnxruntime"]["backend"] == "onnxruntime"
    assert set(res["per_class"]) <= set(make_synthetic_ava.ACTIONS) and res["per_class"]
    again = evaluate_files(str(d / "data" / "test.csv"), res["detections"], str(d / "data" / "label_map.pbtxt"),
                           str(d / "data" / "test_excluded.csv"))
    assert again["mAP"] == res["mAP"]
    rows = [r for r in csv.reader(open(res["detections"]))]
    assert len(rows[0]) == 8 and rows[0][1] == "902"
    dy = np.array([float(r[7]) for r in rows])
    ort = np.array([float(r[7]) for r in csv.reader(open(outs["onnxruntime"]["detections"]))])
    assert np.abs(dy - ort).max() <= 0.0015                  # scores are written with 3 decimals
    # int8 (ONNX Runtime QDQ, calibrated on the training keyframes): the same rows, scores close to fp32
    run_cli("eval.py", "--config", DEMO, "--weights", w, "--precision", "int8", "--save_dir", d / "int8",
            "--cache_dir", d / "cache", *args)
    q = json.loads((d / "int8" / "SLOWFAST_AVA_eval.json").read_text())
    assert q["backend"] == "onnxruntime-int8" and q["capacity"] == 50
    qs = np.array([float(r[7]) for r in csv.reader(open(q["detections"]))])
    assert qs.shape == ort.shape and np.abs(qs - ort).mean() < 0.02 and abs(q["mAP"] - res["mAP"]) <= 0.1
    # sharded over 2 processes (run.sh --nproc 2): the same CSV, the same mAP
    env = dict(os.environ, PV_LAUNCH_LOG_DIR=str(d / "launch"),
               VIRTUAL_ENV=os.environ.get("VIRTUAL_ENV", os.path.dirname(os.path.dirname(sys.executable))))
    p = subprocess.run(["bash", os.path.join(ROOT, "run.sh"), "eval", "SLOWFAST_AVA", DEMO, "--weights", w,
                        "--backend", "dygraph", "--save_dir", str(d / "two"), "--nproc", "2"] + [str(a) for a in args],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    two = json.loads((d / "two" / "SLOWFAST_AVA_eval.json").read_text())
    assert two["processes"] == 2 and (two["mAP"], two["per_class"]) == (res["mAP"], res["per_class"])
    assert (d / "two" / "SLOWFAST_AVA_detections.csv").read_text() == open(res["detections"]).read()


def test_predict_video_with_proposals_json_and_render(tiny, tmp_path):
    import cv2
    d, args, w = tiny
    frames = d / "data" / "frames" / "test_0000"
    clip = str(tmp_path / "test_0000.mp4")
    names = sorted(os.listdir(frames))
    wr = cv2.VideoWriter(clip, cv2.VideoWriter_fourcc(*"mp4v"), 30, (160, 128))
    for n in names:
        wr.write(cv2.imread(str(frames / n)))
    wr.release()
    with open(d / "data" / "test_proposals.pkl", "rb") as f:
        props = pickle.load(f)
    boxes = {"test_0000,{:04d}".format(int(k.split(",")[1]) - 900): v.tolist() for k, v in props.items()
             if k.startswith("test_0000,")}
    bf = tmp_path / "boxes.json"
    bf.write_text(json.dumps(boxes))
    out, mp4 = tmp_path / "det.json", tmp_path / "det.mp4"
    run_cli("predict.py", "--config", DEMO, "--weights", w, "--video_path", clip, "--proposals", bf,
            "--threshold", "0.0", "--output", out, "--render", mp4, "--backend", "dygraph", *args)
    res = json.loads(out.read_text())
    times = [k["time"] for k in res["keyframes"]]
    assert times == [float(t) for t in range(len(times))] and len(times) == 6     # 155 frames at 30 fps, stride 1 s
    assert res["keyframes_without_boxes"] == 3                                  # only seconds 2, 3, 4 have boxes
    # --stride 0.5: keys are whole seconds, so 1.5 s and 2.5 s read none (no rounding onto 0002 twice)
    half = run_cli("predict.py", "--config", DEMO, "--weights", w, "--video_path", clip, "--proposals", bf,
                   "--threshold", "0.0", "--stride", "0.5", "--output", tmp_path / "half.json", "--backend",
                   "dygraph", *args)
    kfs = json.loads((tmp_path / "half.json").read_text())["keyframes"]
    with_boxes = [k["time"] for k in kfs if k["persons"]]
    assert [k["time"] for k in kfs] == [t / 2 for t in range(11)] and with_boxes == [2.0, 3.0, 4.0]
    assert "8 keyframes had no entry" in half.stdout and "5 of them fall between whole seconds" in half.stdout
    # a container whose header reports no frame count (Matroska written to a pipe) is decoded to its end
    import imageio_ffmpeg
    raw = str(tmp_path / "test_0000.mkv")
    with open(raw, "wb") as f:
        subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-i", clip, "-c:v", "mpeg4",
                        "-f", "matroska", "-"], check=True, stdout=f)
    assert cv2.VideoCapture(raw).get(cv2.CAP_PROP_FRAME_COUNT) <= 0
    run_cli("predict.py", "--config", DEMO, "--weights", w, "--video_path", raw, "--proposals", bf,
            "--threshold", "0.0", "--output", tmp_path / "raw.json", "--backend", "dygraph", *args)
    assert [k["time"] for k in json.loads((tmp_path / "raw.json").read_text())["keyframes"]] == times
    kf = [k for k in res["keyframes"] if k["time"] == 2.0][0]
    assert len(kf["persons"]) == len(boxes["test_0000,0002"]) - 2               # the 2 low-score junk boxes go
    p = kf["persons"][0]
    assert p["box_norm"][0] == pytest.approx(boxes["test_0000,0002"][0][0], abs=1e-6)
    assert p["box"][0] == pytest.approx(boxes["test_0000,0002"][0][0] * 160, abs=1e-4)
    assert {a["label"] for a in p["actions"]} == set(make_synthetic_ava.ACTIONS)     # threshold 0: all 8
    cap = cv2.VideoCapture(str(mp4))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == len(names)
    cap.release()


def test_hog_detector_finds_a_person_in_a_real_clip():
    import cv2
    from paddlevideo.engine.detect import HOGPersonDetector, load_detector
    cap = cv2.VideoCapture(os.path.join(DATA, "arm_wrestling.mp4"))
    ok, img = cap.read()
    cap.release()
    boxes = HOGPersonDetector(min_score=0.0)(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
    assert boxes.shape[1] == 5 and (boxes[:, 2] > boxes[:, 0]).all()
    with pytest.raises(UserError, match="module:attribute"):
        load_detector("nocolon")
    assert isinstance(load_detector("paddlevideo.engine.detect:HOGPersonDetector"), HOGPersonDetector)


def test_ava_prepare_cuts_seconds_at_30_fps_and_resumes(tmp_path):
    import cv2
    movies = tmp_path / "movies"
    movies.mkdir()
    src = os.path.join(DATA, "arm_wrestling.mp4")                     # 28 fps, 10 s
    os.symlink(src, movies / "vid1.mp4")
    out = tmp_path / "frames"
    p = run_cli("data/dataset/ava_prepare.py", movies, "--out", out, "--start", 1, "--end", 3, "--workers", 1)
    names = sorted(n for n in os.listdir(out / "vid1") if n.endswith(".jpg"))
    assert names[0] == "00001.jpg" and names[-1] == "00060.jpg" and len(names) == 60
    # output frame 16 is second 1.5 -> source frame floor(1.5 * 28) = 42 -> index 42 of a fresh decode
    cap = cv2.VideoCapture(src)
    for _ in range(42):
        cap.read()
    want = cap.read()[1]
    cap.release()
    got = cv2.imread(str(out / "vid1" / "00016.jpg"))
    assert np.abs(got.astype(int) - want.astype(int)).mean() < 3
    again = run_cli("data/dataset/ava_prepare.py", movies, "--out", out, "--start", 1, "--end", 3)
    assert "1 already extracted, 0 to do" in again.stdout and "0 movies failed" in p.stdout


def test_exported_detector_equals_dygraph_on_both_fast_backends(tiny, tmp_path):
    from paddlevideo.engine.backends import make_runner
    d, args, w = tiny
    over = [a for a in args if a != "-o"]
    cfg = load_config(DEMO, over)
    rs = np.random.RandomState(0)
    ref = make_runner(cfg, "test", w, "dygraph")[0]
    runners = [make_runner(cfg, "test", w, b, cache_dir=str(tmp_path))[0] for b in ("paddle-inference", "onnxruntime")]
    for h, wd, n in ((128, 160, 3), (96, 176, 1)):                      # the frame size is a dynamic input
        x = rs.rand(1, 8, 3, h, wd).astype("float32")
        xy = rs.uniform(0, 60, (n, 2))
        boxes = np.concatenate([xy, xy + rs.uniform(10, 40, (n, 2))], 1).astype("float32")
        want = ref(x, boxes, np.array([n], np.int32))
        for run in runners:
            np.testing.assert_allclose(run(x, boxes, np.array([n], np.int32)), want, rtol=1e-4, atol=1e-4)


def test_keyframe_clips_from_a_cut_video_equal_the_frame_folder(tmp_path):
    import cv2
    from paddlevideo.data.ava import AVADataset
    data = tmp_path / "syn"
    make_synthetic_ava.make(str(data), 0, 0, 1, seed=2)
    videos = tmp_path / "videos"
    videos.mkdir()
    frames = data / "frames" / "test_0000"
    wr = cv2.VideoWriter(str(videos / "test_0000.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 30, (160, 128))
    for n in sorted(os.listdir(frames)):
        wr.write(cv2.imread(str(frames / n)))
    wr.release()
    got = []
    for root in (data / "frames", videos):
        cfg = load_config(DEMO, ["TEST.filelist={}".format(data / "test.csv"), "TEST.data_root={}".format(root),
                                 "TEST.proposal_file={}".format(data / "test_proposals.pkl")])
        records, _ = load_records(cfg.mode("test"), Problems(quiet=True))
        assert records[0]["source"][0] == ("frames" if root == data / "frames" else "video")
        got.append(AVADataset(records, cfg.mode("test")).load(0))
    (c1, r1, _), (c2, r2, _) = got
    assert c1.shape == c2.shape == (8, 3, 128, 160) and np.array_equal(r1, r2)
    assert np.abs(c1 - c2).mean() < 0.05                      # the same frames, re-encoded once more


def test_benchmark_scores_a_large_result_file_and_leaves_no_temporary_files(tmp_path):
    """scripts/benchmark.py --sections ava_eval --quick: the capped and uncapped scorer on 50 k rows, JSON out;
    everything it wrote under the temporary folder is gone afterwards."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    out = tmp_path / "b.json"
    p = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "benchmark.py"), "--sections", "ava_eval",
                        "--quick", "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600,
                       env=dict(os.environ, TMPDIR=str(tmp)))
    assert p.returncode == 0, p.stderr[-2000:]
    res = json.loads(out.read_text())["ava_eval"]
    assert res["capacity_50"]["rows"] == res["no_cap"]["rows"] == 49920
    assert res["capacity_50"]["keyframes"] == 208 and res["capacity_50"]["peak_rss_mb"] > 0
    assert res["capacity_50"]["mAP"] != res["no_cap"]["mAP"]      # 240 rows per keyframe: the cap decides
    assert os.listdir(tmp) == []


def test_the_ava_action_list_ships_with_the_project():
    """configs/slowfast_ava.yaml's label map is the shipped AVA v2.1 list: the 60 evaluated of the 80 actions."""
    from paddlevideo.engine.common import label_map_path
    path = label_map_path(load_config(AVA))
    assert os.path.isfile(path) and path.startswith(os.path.join(ROOT, "data", "dataset"))
    names, ids = read_label_map(path)
    assert len(ids) == 60 and names[64] == "fight/hit (a person)" and names[54] == "smoke"
    assert names[15] == "answer phone" and 2 not in ids and 80 in ids
    text = open(path).read()
    assert text.count("# not evaluated: item") == 20 and "CC BY 4.0" in text
