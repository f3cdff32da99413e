"""data.dataset: miscnn — MIScnn's NIFTI_interface, the project's readers and a user's Abstract_IO as data sets."""

import numpy as np
import pytest

from pipeline.config import load_config
from pipeline.data import open_dataset
from pipeline.data.phantoms import write_brats20, write_kits19
from pipeline.errors import ConfigError, DataError
from pipeline.miscnn_compat import miscnn

NIFTI_INTERFACE = "miscnn.data_loading.interfaces.NIFTI_interface"


class MemoryInterface(miscnn.data_loading.interfaces.abstract_io.Abstract_IO):
    """A user's interface: two-channel arrays drawn in memory, spacing but no affine, one broken case."""

    def __init__(self, channels=2, classes=2, three_dim=True, cases=3):
        super().__init__(channels, classes, three_dim)
        self.cases = cases

    def initialize(self, input_path):
        return [*range(self.cases), ".hidden"]

    def load_image(self, index):
        if index == 2:
            raise RuntimeError("scanner file\nunreadable")
        image = np.random.default_rng(index).normal(size=(4, 6, 8, 2))
        return image, {"spacing": [2.0, 1.0, 0.5]}

    def load_segmentation(self, index):
        return (np.arange(4 * 6 * 8).reshape(4, 6, 8) % 2).astype(np.int64)

    def load_prediction(self, index, output_path):
        raise NotImplementedError

    def save_prediction(self, sample, output_path):
        raise NotImplementedError

    @staticmethod
    def check_file_termination(termination):
        return False


@pytest.fixture(scope="module")
def kits19_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("kits19")
    write_kits19(root, 3, seed=5)
    (root / "._case_00000").write_bytes(b"macOS junk")
    return root


def test_miscnn_nifti_interface_reads_what_the_kits19_reader_reads(kits19_root):
    through_miscnn = open_dataset("miscnn", kits19_root, interface={"class": NIFTI_INTERFACE, "args": {"classes": 3}})
    reader = open_dataset("kits19", kits19_root, exclude=[])
    assert through_miscnn.case_ids() == reader.case_ids() == ["case_00000", "case_00001", "case_00002"]
    assert through_miscnn.class_names == ("background", "class_1", "class_2") and through_miscnn.num_classes == 3
    ours, theirs = through_miscnn.load("case_00002"), reader.load("case_00002")
    assert np.array_equal(ours.image, theirs.image) and ours.image.dtype == np.float32
    assert np.array_equal(ours.label, theirs.label) and ours.label.dtype == np.uint8
    assert np.array_equal(ours.affine, theirs.affine) and ours.spacing == pytest.approx(theirs.spacing)
    assert np.array_equal(through_miscnn.load_segmentation("case_00001"), reader.load_segmentation("case_00001"))
    assert through_miscnn.source_files("case_00001") == reader.source_files("case_00001")
    assert through_miscnn.fingerprint()["interface"] == {"class": NIFTI_INTERFACE, "args": {"classes": 3}}


def test_project_readers_are_interfaces_of_the_same_path(kits19_root):
    through_miscnn = open_dataset(
        "miscnn", kits19_root, interface={"class": "pipeline.data.kits19.KiTS19", "args": {"exclude": [1]}}
    )
    reader = open_dataset("kits19", kits19_root, exclude=[1])
    assert through_miscnn.case_ids() == reader.case_ids() == ["case_00000", "case_00002"]
    assert through_miscnn.excluded == reader.excluded == ["case_00001"]
    assert through_miscnn.class_names == reader.class_names == ("background", "kidney", "tumour")
    assert through_miscnn.modalities == ("ct",)
    assert through_miscnn.geometry("case_00000").shape == reader.geometry("case_00000").shape
    ours, theirs = through_miscnn.load("case_00000"), reader.load("case_00000")
    assert np.array_equal(ours.image, theirs.image) and np.array_equal(ours.label, theirs.label)


def test_brats20_reader_through_the_interface_path(tmp_path):
    write_brats20(tmp_path, 3, seed=1)
    options = {"modalities": ["t2", "t1ce"], "label_map": {4: 1, 1: 1}}
    through_miscnn = open_dataset(
        "miscnn", tmp_path, interface={"class": "pipeline.data.brats20.BraTS20", "args": options}
    )
    reader = open_dataset("brats20", tmp_path, **options)
    assert through_miscnn.case_ids() == reader.case_ids() and through_miscnn.modalities == ("t2", "t1ce")
    assert through_miscnn.class_names == reader.class_names == ("background", "necrotic_core+enhancing_tumour")
    case_id = reader.case_ids()[0]
    ours, theirs = through_miscnn.load(case_id), reader.load(case_id)
    assert ours.image.shape[-1] == 2 and np.array_equal(ours.image, theirs.image)
    assert np.array_equal(ours.label, theirs.label) and np.array_equal(ours.affine, theirs.affine)


def test_a_users_interface_with_spacing_only(tmp_path, caplog):
    interface = {"class": f"{__name__}.MemoryInterface", "args": {}}
    dataset = open_dataset("miscnn", tmp_path, interface=interface, exclude=["1", "case_00001"])
    assert dataset.case_ids() == ["0", "2"] and dataset.excluded == ["1"]  # ".hidden" is ignored
    assert "data.exclude: case_00001 match no index of MemoryInterface (indices look like '0')" in caplog.text
    case = dataset.load("0")
    assert case.image.shape == (4, 6, 8, 2) and dataset.modalities == ("channel_0", "channel_1")
    assert case.spacing == (2.0, 1.0, 0.5)
    np.testing.assert_array_equal(case.affine, np.diag([2.0, 1.0, 0.5, 1.0]))
    assert dataset.geometry("0").shape == (4, 6, 8)
    with pytest.raises(DataError) as error:
        dataset.load("2")
    assert str(error.value) == (
        f"{tmp_path / '2'}: MemoryInterface.load_image/load_segmentation failed: RuntimeError: scanner file unreadable"
    )
    with pytest.raises(ConfigError, match=r"data\.interface\.args: MemoryInterface has classes=1; segmentation"):
        open_dataset("miscnn", tmp_path, interface={**interface, "args": {"classes": 1}})


@pytest.mark.parametrize(
    "interface, message",
    [
        (
            {"class": "miscnn.data_loading.interfaces.NIfTI_interface"},
            "data.interface.class: cannot import 'miscnn.data_loading.interfaces.NIfTI_interface' (module "
            "miscnn.data_loading.interfaces has no NIfTI_interface; "
            "did you mean miscnn.data_loading.interfaces.NIFTI_interface?)",
        ),
        (
            {"class": "no_such_package.Interface"},
            "data.interface.class: cannot import 'no_such_package.Interface' (No module",
        ),
        (
            {"class": "pipeline.data.case.Case"},
            "data.interface.class: pipeline.data.case.Case is not a MIScnn Abstract_IO",
        ),
        (
            {"class": NIFTI_INTERFACE, "args": {"colour": "red"}},
            "data.interface.args: got an unexpected keyword argument",
        ),
        ({"class": NIFTI_INTERFACE, "args": {"three_dim": False}}, "data.interface.args: "),
    ],
)
def test_bad_interfaces_name_the_key(tmp_path, interface, message):
    with pytest.raises(ConfigError) as error:
        open_dataset("miscnn", tmp_path, interface=interface)
    assert str(error.value).startswith(message)


def test_options_of_other_data_sets_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="data.modalities: not an option of data set 'miscnn'"):
        open_dataset("miscnn", tmp_path, interface={"class": NIFTI_INTERFACE}, modalities=["ct"])


def test_config_requires_an_interface_exactly_for_miscnn(tmp_path):
    def config(*overrides):
        return load_config("configs/demo_dice.yaml", [f"data.root={tmp_path}", *overrides])

    spec = config("data.dataset=miscnn", f"data.interface={{class: {NIFTI_INTERFACE}, args: {{classes: 3}}}}")
    assert spec.data.dataset_options()["interface"] == {"class": NIFTI_INTERFACE, "args": {"classes": 3}}
    assert f"class: {NIFTI_INTERFACE}" in spec.to_yaml()
    with pytest.raises(ConfigError, match=r"data\.interface: required for data\.dataset miscnn"):
        config("data.dataset=miscnn")
    with pytest.raises(ConfigError, match=r"data\.interface: only for data\.dataset miscnn"):
        config("data.dataset=kits19", "data.interface={class: a.B}")
    with pytest.raises(ConfigError, match=r"data\.interface\.class: expected an import path module\.Class"):
        config("data.dataset=miscnn", "data.interface={class: NIFTI_interface}")
    assert config("data.dataset=nnunet", "data.exclude=[kidney_001, 3]").data.exclude == ["kidney_001", 3]
