import pytest

from froster.config import Config, load_config, parse_overrides, save_config, valid_keys

CONFIGS = sorted((__import__("pathlib").Path(__file__).parents[1] / "configs").glob("*.yaml"))


def test_overrides_are_converted_to_the_field_types():
    cfg = load_config(overrides=["lr=1e-5", "epochs=3", "distill=false", "pretrained=none",
                                 "quick_gelu=true", "warmup_epochs=0.5", "resume=latest"])
    assert cfg.lr == 1e-5 and isinstance(cfg.lr, float)
    assert cfg.epochs == 3 and isinstance(cfg.epochs, int)
    assert cfg.distill is False and cfg.pretrained is None and cfg.quick_gelu is True
    assert cfg.warmup_epochs == 0.5 and cfg.resume == "latest"


def test_defaults_are_the_reference_recipe():
    cfg = Config()
    assert (cfg.num_frames, cfg.sampling_rate, cfg.target_fps) == (8, 16, 30.0)
    assert (cfg.lr, cfg.warmup_start_lr, cfg.min_lr, cfg.warmup_epochs) == (3.33e-6, 3.33e-8, 3.33e-8, 2.0)
    assert (cfg.weight_decay, cfg.clip_grad, cfg.distill_weight, cfg.alpha) == (0.01, 1.0, 2.0, 0.1)
    assert (cfg.test_views, cfg.test_crops, cfg.average_from_epoch) == (3, 1, 2)
    assert cfg.shard_text is None and cfg.zero_shot is False  # none: on whenever world_size > 1 (exact)
    assert cfg.sampling == "reference" and cfg.apply_rotation is False  # the reference's decoder


def test_unknown_key_lists_valid_keys_and_suggests_the_closest():
    with pytest.raises(ValueError) as err:
        load_config(overrides=["num_frame=4"])
    message = str(err.value)
    assert "unknown config key 'num_frame'" in message
    assert "Did you mean 'num_frames'?" in message
    for key in valid_keys():
        assert key in message


def test_unknown_key_in_yaml_names_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("epochs: 2\nwarmup_epoch: 1\n")
    with pytest.raises(ValueError, match=r"'warmup_epoch' in .*bad\.yaml.*'warmup_epochs'"):
        load_config(path)


@pytest.mark.parametrize("item, message", [
    ("epochs=two", "epochs='two'.*expected int"),
    ("epochs=1.5", "expected int"),
    ("distill=maybe", "expected true/false"),
    ("precision=fp8", "precision='fp8': expected one of auto, fp32, bf16, fp16"),
    ("temporal=lstm", "temporal"),
    ("sampling=even", "sampling='even': expected one of reference, uniform"),
    ("batch_size=0", "batch_size must be at least 1"),
    ("lr", "not of the form key=value"),
])
def test_bad_values_are_clear_errors(item, message):
    with pytest.raises(ValueError, match=message):
        load_config(overrides=[item])


def test_yaml_base_overrides_and_command_line_order(tmp_path):
    (tmp_path / "parent.yaml").write_text("epochs: 5\nlr: 1.0e-4\nmodel: froster-tiny\n")
    (tmp_path / "child.yaml").write_text("base: parent.yaml\nepochs: 7\n")
    cfg = load_config(tmp_path / "child.yaml", ["lr=2e-4"])
    assert (cfg.model, cfg.epochs, cfg.lr) == ("froster-tiny", 7, 2e-4)


def test_missing_config_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_config(tmp_path / "nope.yaml")


def test_saved_config_round_trips(tmp_path):
    cfg = load_config(overrides=["epochs=3", "pretrained=none", "data_root=/x y/z"])
    save_config(cfg, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == cfg
    assert load_config(base=cfg.to_dict()) == cfg


def test_parse_overrides_keeps_equals_signs_in_values():
    assert parse_overrides(["data_root=/a=b"]) == {"data_root": "/a=b"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_loads(path):
    cfg = load_config(path)
    if path.name != "tiny.yaml":
        assert cfg.model == "ViT-B-16" and cfg.pretrained == "openai"
        assert cfg.lr == 3.33e-6 and cfg.num_frames == 8 and cfg.sampling_rate == 16


def test_configs_cover_every_row_of_the_paper_tables():
    names = {p.stem for p in CONFIGS}
    for dataset in ("k400", "hmdb", "ucf", "ssv2"):
        for row in ("", "_open_vclip", "_vificlip", "_frozen_clip"):
            assert f"b2n_{dataset}{row}" in names
    for row in ("", "_open_vclip", "_frozen_clip"):
        assert f"cross_k400{row}" in names
    for backbone in ("mean", "aim", "st_adapter", "adaptformer", "actionclip"):  # Table 3
        assert {f"cross_k400_{backbone}", f"cross_k400_{backbone}_finetune"} <= names
    cross = load_config(CONFIGS[0].parent / "cross_k400.yaml")
    assert (cross.epochs, cross.batch_size) == (22, 64)
    assert load_config(CONFIGS[0].parent / "b2n_ucf.yaml").batch_size == 64
    b2n = load_config(CONFIGS[0].parent / "b2n_k400.yaml")
    assert (b2n.epochs, b2n.batch_size) == (12, 32)
    frozen = load_config(CONFIGS[0].parent / "b2n_hmdb_frozen_clip.yaml")
    assert frozen.zero_shot and frozen.temporal == "mean"
    vifi = load_config(CONFIGS[0].parent / "b2n_ssv2_vificlip.yaml")
    assert not vifi.distill and vifi.temporal == "mean"


def test_shipped_configs_are_found_by_name(capsys):
    from froster.cli import main
    from froster.config import CONFIG_DIR, find_config, load_config
    from froster.errors import MissingFileError

    assert find_config("b2n_k400") == CONFIG_DIR / "b2n_k400.yaml"
    assert find_config("b2n_k400.yaml") == CONFIG_DIR / "b2n_k400.yaml"
    assert load_config(find_config("cross_k400")).epochs == 22  # the reference's recipe
    with pytest.raises(MissingFileError, match="Did you mean b2n_k400"):
        find_config("b2n_k4000")
    with pytest.raises(MissingFileError, match="config file not found: nowhere/b2n_k400.yaml"):
        find_config("nowhere/b2n_k400.yaml")
    assert main(["train", "--list-configs"]) == 0
    listed = capsys.readouterr().out.split()
    assert "b2n_k400" in listed and "cross_k400_aim_finetune" in listed and len(listed) >= 29


def test_the_configs_ship_inside_the_package():
    import tomllib
    from pathlib import Path

    from froster.config import CONFIG_DIR

    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    assert "configs/*.yaml" in project["tool"]["setuptools"]["package-data"]["froster"]
    assert CONFIG_DIR.parent.name == "froster" and len(list(CONFIG_DIR.glob("*.yaml"))) >= 29
