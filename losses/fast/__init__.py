"""Fast paths of the loss formulas: fused CPU kernels and analytic-backward PyTorch Functions.

``dispatch`` is the one place that chooses among them; the loss files never do.
``focal_functions`` and ``sigmoid_functions`` hold the autograd Functions; the kernels
themselves are built by ``losses/native.py`` from ``losses/csrc/``.
"""
