"""The latent toolkit: functions over the model protocol (encode/decode/conditions/latent_shape/latent_stats).

sampling (prior samples), interpolation and align (lerp, guarded slerp, framewise paths between latents of
unequal length), genre (centroids, attribute vectors, blending through the condition or the latent), anomaly
(negative ELBO per frame) and directions (principal axes of the latent frames, for sliders). Every function takes
tensors and a model of :class:`audiovae.models.LatentModel`; nothing here reads files (:mod:`audiovae.scoring`
scores files).
"""
from .align import align_latents, interpolate_temporal
from .anomaly import anomaly_map, anomaly_scores
from .blend import BLEND_METHODS, latent_blend, mixed_condition
from .directions import (directions_from_items, directions_from_prior, latent_directions, move_along,
                         principal_directions)
from ..genres import condition_weights
from .genre import attribute_vector, blend_genres, centroids_from_folder, genre_centroids, shift_latent
from .interpolation import interpolate, interpolation_path, lerp, slerp
from .sampling import prior_samples

__all__ = ["interpolate", "interpolation_path", "lerp", "slerp", "align_latents", "interpolate_temporal",
           "prior_samples", "genre_centroids", "centroids_from_folder", "attribute_vector", "condition_weights",
           "shift_latent", "blend_genres", "anomaly_scores", "anomaly_map", "latent_blend", "mixed_condition",
           "BLEND_METHODS", "principal_directions", "directions_from_items", "directions_from_prior",
           "latent_directions", "move_along"]
