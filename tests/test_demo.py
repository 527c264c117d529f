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
