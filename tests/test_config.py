"""The experiment config: every error names its key, before any work; --set overrides; base files."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.config import ExperimentConfig, load_config
from pipeline.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
MINIMAL = {
    "experiment": {"name": "unit"},
    "data": {"dataset": "kits19", "root": "data/kits19"},
    "sampling": {"patch_shape": [16, 32, 32]},
    "model": {"n_filters": 4, "depth": 2},
    "loss": {"name": "asymmetric_unified_focal", "params": {"weight": 0.5, "delta": 0.6, "gamma": 0.5}},
    "training": {"epochs": 2},
}


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "experiment.yaml"
    path.write_text(yaml.safe_dump(MINIMAL))
    return path


def error_of(path, overrides=()):
    with pytest.raises(ConfigError) as caught:
        load_config(path, overrides)
    return str(caught.value)


def test_minimal_config_gets_the_papers_defaults(config_file):
    config = load_config(config_file)
    assert config.training.learning_rate == 1e-4 and config.training.min_learning_rate == 1e-5
    assert config.cross_validation.folds == 5
    assert config.inference_overlap == (8, 16, 16)  # half the patch
    assert str(config.run_dir) == "runs/unit"
    assert config.loss.params["delta"] == 0.6


def test_unknown_key_is_named_with_its_path(config_file):
    message = error_of(config_file, ["training.learning_rat=0.1"])
    assert str(config_file) in message and "training.learning_rat: unknown key" in message
    assert "data.foo: unknown key" in error_of(config_file, ["data.foo=1"])
    assert "colour: unknown key" in error_of(config_file, ["colour=red"])


def test_wrong_type_is_named_with_its_path(config_file):
    assert "training.epochs:" in error_of(config_file, ["training.epochs=many"])
    assert "sampling.patch_shape:" in error_of(config_file, ["sampling.patch_shape=[16, 32, 32, 32]"])
    assert "2 sizes (H, W) for 2D data or 3" in error_of(config_file, ["sampling.patch_shape=[16]"])
    assert "model.deep_supervision:" in error_of(config_file, ["model.deep_supervision=[1]"])


@pytest.mark.parametrize(
    "override, key",
    [
        ("sampling.patch_shape=[10,32,32]", "sampling.patch_shape"),  # not divisible by 2**depth = 4
        ("inference.overlap=[16,8,8]", "inference.overlap"),  # overlap as large as the patch
        ("training.min_learning_rate=1e-3", "training.min_learning_rate"),
        ("training.learning_rate=0", "training.learning_rate"),
        ("training.precision=float8", "training.precision"),
        ("sampling.foreground_fraction=1.5", "sampling.foreground_fraction"),
        ("cross_validation.folds=1", "cross_validation.folds"),
        ("preprocessing.clip=[304,-79]", "preprocessing.clip"),
        ("data.dataset=lits", "data.dataset"),
        ("experiment.name=../elsewhere", "experiment.name"),
    ],
)
def test_impossible_values_are_named_with_their_path(config_file, override, key):
    assert f"{key}:" in error_of(config_file, [override])


def test_deep_supervision_needs_a_deeper_decoder(config_file):
    message = error_of(config_file, ["model.deep_supervision=true", "model.deep_supervision_heads=2"])
    assert "model.deep_supervision_heads:" in message
    assert load_config(config_file, ["model.deep_supervision=true", "model.deep_supervision_heads=1"])


def test_unknown_loss_and_loss_parameter_are_refused(config_file):
    message = error_of(config_file, ["loss.name=unified"])
    assert "loss.name: unknown loss 'unified'" in message and "asymmetric_unified_focal" in message
    message = error_of(config_file, ["loss.params.alpha=0.3"])
    assert "loss.params:" in message and "'alpha'" in message and "delta" in message
    assert "loss.params:" in error_of(config_file, ["loss.params.delta=2"])  # the loss's own range check


def test_set_overrides_parse_yaml_values(config_file):
    config = load_config(
        config_file,
        [
            "training.epochs=7",
            "training.learning_rate=3e-4",
            "sampling.patch_shape=[8, 16, 16]",
            "cross_validation.splits_file=null",
            "evaluation.regions={kidney_and_tumour: [1, 2]}",
        ],
    )
    assert config.training.epochs == 7 and config.training.learning_rate == 3e-4
    assert config.sampling.patch_shape == (8, 16, 16)
    assert config.evaluation.regions == {"kidney_and_tumour": [1, 2]}
    assert "expected dotted.key=value" in error_of(config_file, ["training.epochs"])


def test_base_file_is_merged_underneath(tmp_path):
    (tmp_path / "shared").mkdir()
    base = dict(MINIMAL, training={"epochs": 2, "learning_rate": 5e-4})
    (tmp_path / "shared" / "base.yaml").write_text(yaml.safe_dump(base))
    (tmp_path / "run.yaml").write_text("base: shared/base.yaml\ntraining: {epochs: 9}\nexperiment: {name: child}\n")
    config = load_config(tmp_path / "run.yaml")
    assert config.training.epochs == 9 and config.training.learning_rate == 5e-4
    assert config.experiment.name == "child" and config.sampling.patch_shape == (16, 32, 32)
    (tmp_path / "loop.yaml").write_text("base: loop.yaml\n")
    assert "circular" in error_of(tmp_path / "loop.yaml")


def test_unreadable_files_are_reported(tmp_path):
    assert "cannot read" in error_of(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("training: [\n")
    assert "not valid YAML" in error_of(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n")
    assert "expected a mapping" in error_of(tmp_path / "list.yaml")


def test_resolved_config_round_trips(config_file):
    config = load_config(config_file)
    assert ExperimentConfig.model_validate(yaml.safe_load(config.to_yaml())) == config


SHIPPED = sorted((ROOT / "configs").glob("*.yaml"))


def test_shipped_configs_are_found():
    assert len(SHIPPED) >= 16  # found from the repository root, whatever the working directory


@pytest.mark.parametrize("path", SHIPPED, ids=lambda path: path.name)
def test_shipped_configs_are_valid(path):
    config = load_config(path)
    assert config.experiment.name == path.stem


def test_validating_a_config_loads_no_stage_and_no_tensorflow():
    """A typo must be reported in a second, not after TensorFlow's tens of seconds of import."""
    code = (
        "import sys, pipeline.config; "
        "print(sorted(m for m in ('tensorflow', 'batchgenerators', 'scipy', 'miscnn', 'pipeline.training', "
        "'pipeline.preprocessing', 'pipeline.data') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert result.stdout.strip() == "[]"


def test_gpu_step_and_worker_settings(config_file):
    config = load_config(config_file)
    assert config.training.jit_compile is False and config.sampling.workers is None
    assert config.inference.batch_size == 2
    config = load_config(config_file, ["training.jit_compile=true", "sampling.workers=3", "inference.batch_size=auto"])
    assert config.training.jit_compile is True and config.sampling.workers == 3
    assert config.inference.batch_size == "auto"
    assert "inference.batch_size:" in error_of(config_file, ["inference.batch_size=many"])
    assert "sampling.workers:" in error_of(config_file, ["sampling.workers=0"])
    hausdorff = load_config(config_file, ["training.jit_compile=true", "loss.name=hausdorff_dt", "loss.params={}"])
    assert hausdorff.training.jit_compile is True  # its prediction's distance map is computed in TensorFlow ops


def test_null_removes_a_key_or_region_the_base_sets(tmp_path):
    """A config derived from the demo base drops the base's kidney-and-tumour region (whole, or by name)."""
    demo = ROOT / "configs" / "base" / "demo.yaml"
    assert load_config(_derived(tmp_path, demo, {})).evaluation.regions == {"kidney_and_tumour": [1, 2]}
    for evaluation in ({"regions": None}, {"regions": {"kidney_and_tumour": None}}):
        config = load_config(_derived(tmp_path, demo, {"evaluation": evaluation}))
        assert config.evaluation.regions == {}
    kept = load_config(
        _derived(tmp_path, demo, {"evaluation": {"regions": {"kidney_and_tumour": None, "kidney": [1]}}})
    )
    assert kept.evaluation.regions == {"kidney": [1]}
    clip = load_config(_derived(tmp_path, demo, {"preprocessing": {"clip": None}}))
    assert clip.preprocessing.clip is None and clip.preprocessing.target_spacing == (5.0, 4.0, 4.0)
    assert load_config(_derived(tmp_path, demo, {}), ["evaluation.regions=null"]).evaluation.regions == {}
    assert load_config(_derived(tmp_path, demo, {}), ["evaluation.regions=~"]).evaluation.regions == {}
    # what remains is validated as ever: removing a required key names it
    message = error_of(_derived(tmp_path, demo, {"data": {"dataset": None}}))
    assert "data.dataset: required key is missing" in message


def test_every_nullable_key_defaults_to_null():
    """Removing a key (null) and setting it to null are the same for every key that accepts null."""
    import typing

    from pydantic import BaseModel

    def nullable_with_other_default(model, prefix=""):
        for name, field in model.model_fields.items():
            arguments = typing.get_args(field.annotation)
            if (
                type(None) in arguments
                and not field.is_required()
                and field.get_default(call_default_factory=True) is not None
            ):
                yield prefix + name
            for argument in (field.annotation, *arguments):
                if isinstance(argument, type) and issubclass(argument, BaseModel):
                    yield from nullable_with_other_default(argument, f"{prefix}{name}.")

    assert list(nullable_with_other_default(ExperimentConfig)) == []


def test_every_shipped_config_resolves_as_before_null_removed_keys():
    """The shipped configs' nulls (clip: null, target_shape: null) mean what they meant: no window, no grid."""
    for path in sorted((ROOT / "configs").glob("*.yaml")):
        raw = yaml.safe_load(path.read_text())
        config = load_config(path)
        for section, values in raw.items():
            for key, value in values.items() if isinstance(values, dict) else ():
                if value is None:
                    assert getattr(getattr(config, section), key) is None, f"{path.name}: {section}.{key}"


def _derived(tmp_path, base, sections):
    path = tmp_path / "derived.yaml"
    path.write_text(
        yaml.safe_dump({"base": str(base), "experiment": {"name": "derived"}, "loss": {"name": "dice"}, **sections})
    )
    return path
