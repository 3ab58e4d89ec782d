"""The latent toolkit: functions over the model protocol (encode/decode/conditions/latent_stats)."""
from .interpolation import interpolate, interpolation_path, lerp, slerp

__all__ = ["interpolate", "interpolation_path", "lerp", "slerp"]
