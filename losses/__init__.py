"""Long-tail classification losses, built by name.

    from losses import build_loss
    criterion = build_loss("cfl", gamma_hc=2, cyclical_factor=4, num_classes=1000)

Importing the family modules registers their losses.
"""
from . import class_balanced, disc_centroids, equalized_focal, focal_family  # noqa: F401  (registration)
from .registry import CONTEXT_KEYS, available_losses, build_loss, get_loss_class, register_loss

__all__ = ["CONTEXT_KEYS", "available_losses", "build_loss", "get_loss_class", "register_loss"]
