"""The learning demo, reduced: only the move right / move left pair, fewer clips and segments.

Both classes show the same frames in opposite orders, so a model that pools frames without
temporal modelling (TSN) cannot beat chance, while TSM must learn the direction.  Seeded and
single-threaded per model, so the outcome is the same on every run of this machine.
"""
import json
import os

from conftest import run_cli

REDUCED = ["--pairs", "0", "--train_per_class", "60", "--val_per_class", "10", "--test_per_class", "30",
           "--epoch", "9", "-o", "MODEL.seg_num=4"]


def test_reduced_demo_tsm_learns_direction_tsn_cannot(tmp_path):
    out = tmp_path / "demo"
    p = run_cli("scripts/demo.py", "--out", out, "--data", tmp_path / "data", *REDUCED, timeout=400)
    res = json.loads((out / "results.json").read_text())
    assert res["classes"] == ["move right", "move left"]
    assert res["TSM"]["test_clips"] == 60 and res["TSN"]["test_clips"] == 60
    assert res["TSM"]["top1"] >= 0.85, res["TSM"]
    assert res["TSN"]["top1"] <= 0.65, res["TSN"]
    assert res["TSM"]["pair_top1"]["move right / move left"] == res["TSM"]["top1"]
    # the table, a class-named prediction and every output file
    assert "move right / move left" in p.stdout and "overall" in p.stdout
    assert "class: move" in p.stdout
    assert res["prediction"]["top_k"][0]["label"] in ("move right", "move left")
    for name in ("training_curves.png", "confusion_tsm.png", "confusion_tsn.png"):
        assert (out / name).stat().st_size > 10000, name
    for model in ("TSM", "TSN"):
        log = [json.loads(line) for line in (out / model / (model + "_log.jsonl")).read_text().splitlines()]
        epochs = [r for r in log if r["type"] == "epoch"]
        assert len(epochs) == 9 and all(r["valid_top1"] is not None for r in epochs)
        assert res[model]["steps"] == epochs[-1]["step"] > 0
    assert os.path.exists(res["TSM"]["weights"])


def test_reduced_online_demo_learns_with_the_past_only_shift_and_streams(tmp_path):
    out = tmp_path / "online"
    p = run_cli("scripts/demo_online.py", "--out", out, "--data", tmp_path / "data", "--pairs", "0",
                "--train_per_class", "60", "--val_per_class", "10", "--test_per_class", "30", "--stream_clips", "6",
                "-o", "TRAIN.epoch=9", "-o", "MODEL.seg_num=4", timeout=400)
    res = json.loads((out / "results.json").read_text())
    # the direction from the past only: chance is 0.5; on 60 held-out clips 0.75 is 3.9 standard deviations above
    # it (measured 0.80 online / 0.95 bidirectional on this machine, 0.90 online on an earlier VM: the seeded
    # result differs between CPUs)
    assert res["online"]["top1"] >= 0.75, res
    assert res["bidirectional"]["top1"] >= 0.75, res
    s = res["stream"]
    assert s["clips"] == 6 and s["steps"] == 6 * 4 and s["every"] == 4       # 16-frame clips, 4 segments
    assert s["step_accuracy"] > 0.5 and 0 <= s["mean_delay_frames"] < 16     # better than chance; switches in-clip
    assert (out / "timeline.png").stat().st_size > 10000 and "smoothed-label accuracy" in p.stdout
