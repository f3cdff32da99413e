"""batchgenerators draws from the calling thread's RandomState: same draws as the seeded global state, no lock."""

import random
import threading

import numpy as np
from batchgenerators.transforms.abstract_transforms import Compose
from batchgenerators.transforms.color_transforms import ContrastAugmentationTransform, GammaTransform
from batchgenerators.transforms.noise_transforms import GaussianNoiseTransform
from batchgenerators.transforms.spatial_transforms import MirrorTransform

from pipeline.training import batchgenerators_random

TRANSFORMS = Compose(
    [
        MirrorTransform(axes=(0, 1, 2), p_per_sample=0.5),
        ContrastAugmentationTransform((0.65, 1.5), p_per_sample=0.5),
        GammaTransform((0.7, 1.5), retain_stats=True, p_per_sample=0.5),
        GaussianNoiseTransform((0.0, 0.1), p_per_sample=0.5),
    ]
)


def data(seed):
    rng = np.random.default_rng(seed)
    return {
        "data": rng.normal(size=(1, 1, 6, 7, 8)).astype(np.float32),
        "seg": rng.integers(0, 3, (1, 1, 6, 7, 8)).astype(np.uint8),
    }


def test_thread_state_draws_what_the_seeded_global_state_draws():
    batchgenerators_random.install()
    for seed in range(8):
        np.random.seed(seed)
        random.seed(seed)
        global_result = TRANSFORMS(**data(seed))
        np.random.seed(12345)
        random.seed(12345)
        with batchgenerators_random.thread_random_state(seed):
            thread_result = TRANSFORMS(**data(seed))
        assert np.array_equal(np.random.get_state()[1], np.random.RandomState(12345).get_state()[1])
        assert random.getstate() == random.Random(12345).getstate()
        for key in ("data", "seg"):
            np.testing.assert_array_equal(thread_result[key], global_result[key])


def test_threads_draw_independently_while_running_concurrently():
    batchgenerators_random.install()
    expected = {}
    for seed in range(6):
        with batchgenerators_random.thread_random_state(seed):
            expected[seed] = TRANSFORMS(**data(seed))["data"]
    got, start = {}, threading.Barrier(6)

    def work(seed):
        start.wait()
        for _ in range(20):  # interleave many draws with the other threads
            with batchgenerators_random.thread_random_state(seed):
                result = TRANSFORMS(**data(seed))["data"]
            assert np.array_equal(result, expected[seed])
        got[seed] = result

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(got) == list(range(6))
