"""Long-tail classification losses, built by name; usable on their own in any PyTorch loop.

    from losses import build_loss
    criterion = build_loss("cfl", gamma_hc=2, cyclical_factor=4, num_classes=1000)

What lives here, one idea a file; each loss file's core is its formula in plain PyTorch:

    registry.py          the Registry, build_loss, and the loss protocol the trainer relies on
    checks.py            argument checks and reductions every loss shares
    focal_family.py      softmax, focal, asl: the focal family's formula
    cyclical_focal.py    cfl, casl: the focal family with the cyclical schedule of schedule.py
    sigmoid_focal.py     the sigmoid focal core that class_balanced.py and equalized_focal.py share
    class_balanced.py    cb_softmax, cb_sigmoid, cb_focal
    equalized_focal.py   efl
    logit_adjusted.py    balanced_softmax, logit_adjusted: cross-entropy on prior-shifted logits
    ldam.py              ldam, with deferred re-weighting
    seesaw.py            seesaw
    disc_centroids.py    OLTR's discriminative centroids feature loss

Importing the loss modules registers their losses.
"""

from . import (  # noqa: F401  (registration)
    class_balanced,
    cyclical_focal,
    disc_centroids,
    equalized_focal,
    focal_family,
    ldam,
    logit_adjusted,
    seesaw,
)
from .registry import CONTEXT_KEYS, available_losses, build_loss, get_loss_class, register_loss

__all__ = ["CONTEXT_KEYS", "available_losses", "build_loss", "get_loss_class", "register_loss"]
