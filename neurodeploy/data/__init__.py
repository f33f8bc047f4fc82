"""Datasets (fixed, stratified splits) and the deterministic spike encoding."""
from neurodeploy.data.datasets import Dataset, Split, load_dataset
from neurodeploy.data.encoding import encode, encoded_shape, rate_encode

__all__ = ["Dataset", "Split", "encode", "encoded_shape", "load_dataset", "rate_encode"]
