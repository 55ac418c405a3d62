"""Training models on labelled structures: data, batches, loss, the trainer, distillation."""

from .batching import Batch, Batcher
from .data import Sample, read_samples, reference_energies, split_by_trajectory, write_extxyz
from .trainer import TrainConfig, TrainResult, train

__all__ = ["Batch", "Batcher", "Sample", "TrainConfig", "TrainResult", "read_samples", "reference_energies",
           "split_by_trajectory", "train", "write_extxyz"]
