"""The online demo, reduced (a file of its own so that a parallel run puts it beside the TSM demo, not after it):
the past-only shift learns the direction and the stream's smoothed label follows the clips."""
import json

from conftest import run_cli


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
