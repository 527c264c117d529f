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
