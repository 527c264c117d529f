import math
import os

import pytest

from conftest import ROOT
from paddlevideo import UserError, load_config


def write(tmp_path, text):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    return str(p)


def test_legacy_config_loads_with_mode_overrides():
    cfg = load_config(ROOT + "/configs/tsn.yaml")
    assert cfg.MODEL.name == "TSN"
    assert cfg.mode("train").seg_num == 3
    assert cfg.mode("test").seg_num == 7            # TEST.seg_num overrides MODEL.seg_num
    assert cfg.mode("train").l2_weight_decay == pytest.approx(1e-4)
    assert cfg.mode("infer").batch_size == 1


def test_o_overrides_and_yaml_string_numbers(tmp_path):
    path = write(tmp_path, "MODEL:\n  name: TSM\nTRAIN:\n  l2_weight_decay: 1e-4\n")
    cfg = load_config(path, ["TRAIN.batch_size=3", "MODEL.seg_num=4", "TEST.seg_num=6"])
    assert cfg.mode("train").batch_size == 3
    assert cfg.mode("train").seg_num == 4 and cfg.mode("test").seg_num == 6
    assert cfg.TRAIN.l2_weight_decay == pytest.approx(1e-4)   # YAML reads 1e-4 as a string


def test_unknown_key_names_file_line_and_closest(tmp_path):
    path = write(tmp_path, "MODEL:\n  name: TSM\nTRAIN:\n  batch_sise: 4\n")
    with pytest.raises(UserError) as e:
        load_config(path)
    msg = str(e.value)
    assert "TRAIN.batch_sise" in msg and "TRAIN.batch_size" in msg and path in msg and "line 4" in msg
    assert "\n" not in msg


def test_unknown_section_and_wrong_type(tmp_path):
    with pytest.raises(UserError, match="did you mean 'TRAIN'"):
        load_config(write(tmp_path, "MODEL:\n  name: TSM\nTRIAN:\n  epoch: 3\n"))
    with pytest.raises(UserError, match="MODEL.seg_num: expected an integer"):
        load_config(write(tmp_path, "MODEL:\n  name: TSM\n  seg_num: eight\n"))
    with pytest.raises(UserError, match="did you mean TEST.short_size"):
        load_config(write(tmp_path, "MODEL:\n  name: TSM\n"), ["TEST.shortsize=3"])
    with pytest.raises(UserError, match="not found"):
        load_config(str(tmp_path / "missing.yaml"))


def test_optimizer_and_schedule_choices():
    """AdamW + warm-up + cosine stepped per batch; step decay at epoch boundaries; BN not decayed."""
    import paddle
    from paddlevideo import build_model
    from paddlevideo.engine.train import build_optimizer
    cfg = load_config(ROOT + "/configs/demo.yaml", ["TRAIN.epoch=4", "TRAIN.warmup_epochs=1",
                                                    "TRAIN.learning_rate=0.1"])
    model = build_model(cfg)
    opt, sched = build_optimizer(cfg.mode("train"), model, steps_per_epoch=10)
    assert isinstance(opt, paddle.optimizer.AdamW)
    lrs = []
    for _ in range(40):
        lrs.append(opt.get_lr())
        sched.step()
    assert lrs[0] == 0 and lrs[5] == pytest.approx(0.05) and lrs[10] == pytest.approx(0.1)
    assert lrs[25] == pytest.approx(0.05 * (1 + math.cos(math.pi * 15 / 30)))
    assert lrs[39] < 0.001 and all(a >= b for a, b in zip(lrs[10:], lrs[11:]))
    decayed = {p.name for p in model.parameters() if opt._apply_decay_param_fun(p.name)}
    assert model.fc.weight.name in decayed and model.fc.bias.name not in decayed
    assert model.backbone.conv1.bn.weight.name not in decayed

    cfg = load_config(ROOT + "/configs/tsm_small.yaml", ["TRAIN.decay_epochs=[2]", "TRAIN.learning_rate=0.1"])
    opt, sched = build_optimizer(cfg.mode("train"), build_model(cfg), steps_per_epoch=5)
    assert isinstance(opt, paddle.optimizer.Momentum)
    lrs = []
    for _ in range(15):
        lrs.append(opt.get_lr())
        sched.step()
    assert lrs[9] == pytest.approx(0.1) and lrs[10] == pytest.approx(0.01) and lrs[14] == pytest.approx(0.01)


@pytest.mark.parametrize("over,match", [("TRAIN.optimizer=adam", "TRAIN.optimizer 'adam'"),
                                        ("TRAIN.lr_schedule=poly", "TRAIN.lr_schedule 'poly'")])
def test_bad_optimizer_choice_is_one_line_error(over, match):
    with pytest.raises(UserError, match="tsm_small.yaml: " + match):
        load_config(ROOT + "/configs/tsm_small.yaml", [over])


def test_every_mode_is_validated_alike(tmp_path):
    path = write(tmp_path, "MODEL:\n  name: TSM\n  num_classes: 4\n")
    with pytest.raises(UserError, match=r"TEST\.sampling 'Dense' is not supported; use one of segments, dense"):
        load_config(path, ["TEST.sampling=Dense"])
    with pytest.raises(UserError, match=r"INFER\.average 'mean' is not supported"):
        load_config(path, ["INFER.average=mean"])
    # a network key in a mode section is rejected (the network is one for every mode) ...
    with pytest.raises(UserError, match=r"TEST\.num_classes 3 differs from MODEL\.num_classes 4"):
        load_config(path, ["TEST.num_classes=3"])
    with pytest.raises(UserError, match=r"VALID\.shift_ratio"):
        load_config(path, ["VALID.shift_ratio=0.25"])
    with pytest.raises(UserError, match=r"TEST\.format 'flow' has other input channels"):
        load_config(path, ["TEST.format=flow"])
    # ... except the frames per clip and an equal value; a mode section's seg_num is honoured by its reader
    cfg = load_config(path, ["TEST.seg_num=16", "TEST.num_classes=4", "INFER.format=frames"])
    assert cfg.mode("test").seg_num == 16 and cfg.mode("train").seg_num == 8 and cfg.mode("infer").format == "frames"


def test_a_minus_one_label_is_a_bad_line_where_labels_are_needed(tmp_path):
    from paddlevideo.data import parse_list
    video = os.path.join(ROOT, "tests", "data", "arm_wrestling.mp4")
    lst = tmp_path / "l.txt"
    lst.write_text("{} 1\n{} -1\n".format(video, video))
    with pytest.raises(UserError, match=r"l\.txt:2: label -1 is negative"):
        parse_list(str(lst), 2, need_label=True)
    assert [lab for _, lab in parse_list(str(lst), 2, need_label=False)] == [1, -1]   # predict: -1 = unknown


def test_the_readme_reference_is_the_key_table():
    """README's configuration reference is generated from the one key table (python -m paddlevideo.config
    --markdown); every key of the schema has a row, and the network keys are the table's."""
    from paddlevideo import config
    readme = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    start = readme.index("<!-- config reference")
    block = readme[readme.index("\n", start) + 1:readme.index("<!-- end of config reference -->")]
    assert block == config.reference_markdown(), "README is stale: paste `python -m paddlevideo.config --markdown`"
    for key in config.ALL_KEYS:
        assert "| `{}` |".format(key) in block
    assert set(config.NETWORK_KEYS) == {k for k, v in config.MODEL_TABLE.items() if v.network}
    assert "shift_mode" in config.NETWORK_KEYS and "backbone" in config.NETWORK_KEYS
