"""The inputs a network runs on: its own test split (from its metadata), a dataset's test split
by name, or a user's .npz of intensities or spike trains, encoded as the network was exported
and checked against its input width and classes; a sigma-delta network's integer frames."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from neurodeploy.data import encode, load_dataset
from neurodeploy.data.datasets import encoded_test
from neurodeploy.data.npz import is_dataset_file, read_inputs
from neurodeploy.errors import UserError
from neurodeploy.netx.metadata import input_encoding


def encoded_test_split(metadata: dict, source: str = "the network",
                       samples: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The encoded test split a network was exported for (from its own metadata), its first
    `samples` where given."""
    try:
        dataset, encoding = metadata["dataset"], input_encoding(metadata, source)
    except (KeyError, TypeError):
        raise UserError(f"{source}: its metadata names no dataset/timesteps; pass --data "
                        "explicitly or re-export it with `neurodeploy export`") from None
    return encoded_test(dataset, encoding, samples)


INPUT_BITS = (1, 24)   # graded spikes on Loihi 2 carry at most 24 bits (sigma_delta.MESSAGE_BITS)


def check_input_bits(bits: int | None, net=None, source: str = "the network") -> None:
    """Refuse an --input-bits that netx cannot take for this network: outside 1..24, or with
    events whose largest synaptic sum would overflow Lava's 32-bit arithmetic (its Dense sums
    8-bit scaled weights times events in int32, its LIF adds the sum << 6 in int32), where the
    exact mode and the emulator would not wrap as Lava does."""
    if bits is None:
        return
    if not INPUT_BITS[0] <= bits <= INPUT_BITS[1]:
        raise UserError(f"--input-bits {bits}: graded input spikes carry "
                        f"{INPUT_BITS[0]}..{INPUT_BITS[1]} bits on Loihi 2; give a width in "
                        "that range")
    if net is None or not net.layers:
        return
    first, peak = net.layers[0], 2 ** bits - 1
    fan_in = 1 if first.input_shape else max(int(
        (np.asarray(w).reshape(len(w), -1) != 0).sum(1).max()) for w in first.synapse_matrices())
    if max(256 * fan_in * peak, first.input_bound(peak=peak) * 64 + 2 ** 23) >= 2 ** 31:
        raise UserError(f"{source}: layer {first.name!r}: {bits}-bit graded input events (up to "
                        f"{peak}) times its weights would overflow Lava's 32-bit synaptic sums; "
                        "lower --input-bits (or the first layer's weights)")


def load_inputs(metadata: dict, data: str | None = None, samples: int | None = None,
                classes: int | None = None, input_size: int | None = None,
                source: str = "the network",
                input_bits: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Input spikes [N, T, ...] and labels for a network: its own test split by default, a
    dataset's test split by name, or a .npz with `y` and either analog `x` (N, ...) in [0, 1]
    (encoded as the network's metadata says) or spike trains `x` (N, T, ...); see data/npz.py.
    `classes`, `input_size`: the network's output and input sizes; labels beyond the one and
    inputs of another width are refused. `source` names the network in messages.
    `input_bits` N: a .npz's integer `x` may hold graded input events in 0..2**N - 1."""
    if samples is not None and samples < 1:
        raise UserError(f"--samples {samples}: give a positive number of samples")
    if data is None:
        spikes, labels = encoded_test_split(metadata, source, samples)
    elif not data.endswith(".npz") or is_dataset_file(data):     # its test split
        if not metadata.get("timesteps"):
            raise UserError("the network does not record its timesteps; pass --timesteps or "
                            "a .npz of spike trains")
        dataset = load_dataset(data)
        spikes, labels = dataset.encoded("test", input_encoding(metadata, source)), dataset.test.y
    else:
        x, labels = read_inputs(data, classes, input_bits)
        if np.issubdtype(x.dtype, np.floating):
            spikes = encode(x, input_encoding(metadata, source) if metadata.get("timesteps")
                            else {"name": "rate", "timesteps": 16})
        else:
            spikes = x.reshape(len(x), x.shape[1], -1)
    if classes is not None and len(labels) and labels.max() >= classes:
        raise UserError(f"{data or 'the test split'}: label {int(labels.max())} is beyond the "
                        f"network's {classes} outputs; these inputs belong to another network")
    width = int(np.prod(spikes.shape[2:]))
    if input_size is not None and width != input_size:
        raise UserError(f"{data or source}: inputs have {width} channels per step, the network "
                        f"expects {input_size}; check the inputs (and their encoding) belong to "
                        f"{source}")
    if samples:
        spikes, labels = spikes[:samples], labels[:samples]
    return spikes, np.asarray(labels)


def load_frames(inputs, input_size: int, samples: int | None = None,
                network: str = "the network") -> np.ndarray:
    """A sigma-delta network's integer frames [N, T, ...]: an array, the x of an (x, y) pair,
    or the 'x' of an .npz; checked (Lava's Delta takes int32); the first `samples`."""
    if inputs is None:
        raise UserError(f"{network}: a sigma-delta network has no recorded dataset; pass "
                        "--data x.npz with integer frames 'x' shaped [N, T, ...]")
    x, source = inputs[0] if isinstance(inputs, tuple) else inputs, "inputs"
    if isinstance(x, (str, Path)):
        source = str(x)
        try:
            with np.load(x, allow_pickle=False) as f:
                if "x" not in f.files:
                    raise UserError(f"{x}: no array 'x'; save integer frames [N, T, ...] as x")
                x = f["x"]
        except (OSError, ValueError, EOFError) as e:
            raise UserError(f"{source}: not a readable .npz ({type(e).__name__}); save it with "
                            "numpy.savez") from None
    x = np.asarray(x)
    if x.dtype.kind == "f" and np.isfinite(x).all() and np.array_equal(x, np.round(x)):
        x = x.astype(np.int64)
    if x.dtype.kind not in "iu" or x.ndim < 3 or not x.shape[0] or not x.shape[1]:
        raise UserError(f"{source}: field x must hold integers shaped [N, T, ...] with N, T >= 1, "
                        f"got {x.dtype} {list(x.shape)}")
    if int(np.prod(x.shape[2:])) != input_size:
        raise UserError(f"{source}: field x has {int(np.prod(x.shape[2:]))} values per step; the "
                        f"network's input layer takes {input_size}")
    if np.abs(x.astype(np.int64)).max() >= 2 ** 31:
        raise UserError(f"{source}: field x exceeds int32, which Lava's Delta input takes")
    return x[:samples or None]
