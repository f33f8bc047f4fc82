"""Decoded datasets are cached on disk by the digest of their source file: read back when the
source is unchanged, decoded anew when it changed or the cache file is damaged, and never an
error where the cache cannot be written."""
import gzip
import struct

import numpy as np
import pytest

from neurodeploy.data.datasets import _decoded, cache_dir


def _idx_gz(path, images: np.ndarray):
    """An IDX3 unsigned-byte file, gzipped, as Fashion-MNIST ships."""
    header = struct.pack(">BBBBIII", 0, 0, 0x08, 3, *images.shape)
    path.write_bytes(gzip.compress(header + images.tobytes()))
    return path


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURODEPLOY_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_a_decoded_file_is_read_back_from_the_cache_under_its_digest(tmp_path, cache):
    images = np.random.default_rng(0).integers(0, 256, (5, 3, 4), dtype=np.uint8)
    source = _idx_gz(tmp_path / "train-images-idx3-ubyte.gz", images)
    assert cache_dir() == cache
    assert np.array_equal(_decoded(source), images)
    (kept,) = cache.iterdir()
    # the cache answers, not the source: a cached array with the same digest is what comes back
    with np.load(kept) as f:
        digest = str(f["sha256"])
    np.savez(kept, data=images[:1], sha256=np.str_(digest))
    assert np.array_equal(_decoded(source), images[:1])
    # a changed source has another digest: decoded again, kept beside the old one
    _idx_gz(source, images[::-1].copy())
    assert np.array_equal(_decoded(source), images[::-1])
    assert len(list(cache.iterdir())) == 2


@pytest.mark.parametrize("damage", [
    lambda kept: kept.write_bytes(kept.read_bytes()[:100]),                   # truncated
    lambda kept: np.savez(kept, data=np.zeros(1), sha256=np.str_("0" * 64)),  # another digest
    lambda kept: kept.write_text("not a cache file"),
])
def test_a_damaged_cache_file_is_rebuilt(tmp_path, cache, damage):
    images = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    source = _idx_gz(tmp_path / "t10k-images-idx3-ubyte.gz", images)
    _decoded(source)
    (kept,) = cache.iterdir()
    damage(kept)
    assert np.array_equal(_decoded(source), images)
    with np.load(kept) as f:                                   # and the cache is whole again
        assert np.array_equal(f["data"], images)


def test_an_unwritable_cache_only_costs_the_decode(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("")                       # a cache folder under a file
    monkeypatch.setenv("NEURODEPLOY_CACHE", str(tmp_path / "file" / "cache"))
    images = np.ones((1, 2, 2), dtype=np.uint8)
    source = _idx_gz(tmp_path / "x-idx3-ubyte.gz", images)
    assert np.array_equal(_decoded(source), images)
    assert np.array_equal(_decoded(source), images)


@pytest.mark.parametrize("dataset", [{"name": "digits", "split_seed": 0},
                                     {"name": "fashion-mnist", "split_seed": 0}])
def test_the_first_samples_of_a_test_split_are_the_whole_split_encoded_then_cut(dataset):
    """simulate --samples N encodes only N samples (and reads Fashion-MNIST's test set alone):
    the same spikes and labels as the whole split encoded, then cut."""
    from neurodeploy.data.datasets import dataset_of, encoded_test
    from neurodeploy.errors import UserError
    for encoding in ({"name": "rate", "timesteps": 5},
                     {"name": "thermometer", "timesteps": 3, "levels": 4}):
        try:
            x, y = encoded_test(dataset, encoding, 37)
        except UserError as e:                       # Fashion-MNIST is installed by `make data`
            pytest.skip(str(e))
        whole = dataset_of(dataset)
        assert np.array_equal(x, whole.encoded("test", encoding)[:37])
        assert np.array_equal(y, whole.test.y[:37]) and len(y) == 37
