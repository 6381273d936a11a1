"""Serialisation: model files, checkpoints, the architecture registry and ONNX export."""

from minigrad.serialization.architecture import register_layer, register_optimizer
from minigrad.serialization.checkpoints import Checkpoint, load_checkpoint, save_checkpoint
from minigrad.serialization.models import load, load_tensors, save
from minigrad.serialization.onnx_export import export_onnx

__all__ = [
    "Checkpoint",
    "export_onnx",
    "load",
    "load_checkpoint",
    "load_tensors",
    "register_layer",
    "register_optimizer",
    "save",
    "save_checkpoint",
]
