from setuptools import find_packages, setup

setup(
    name="oltr-lt",
    version="0.1.0",
    description="Open Long-Tailed Recognition with a pluggable registry of long-tail losses",
    license="BSD-3-Clause",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    packages=find_packages(include=["oltr", "oltr.*", "losses", "losses.*"]),
    install_requires=[
        "torch>=2.1",
        "torchvision>=0.16",
        "scikit-learn>=1.2",
        "numpy>=1.23",
        "pyyaml>=6.0",
        "tqdm>=4.60",
    ],
    extras_require={
        "test": ["pytest>=7"],
        "plot": ["matplotlib>=3.5"],
        "tb": ["tensorboard>=2.10"],
        # the sweep's SLURM executor (./run_all.sh --executor slurm)
        "slurm": ["submitit>=1.5"],
        # networks.feat_model.type: timm, and the finetune recipe's LoRA (oltr/models/timm_feature.py)
        "timm": ["timm>=1.0", "peft>=0.10", "safetensors>=0.4"],
        # the documentation site (mkdocs build --strict) and the linter/formatter
        "docs": ["mkdocs>=1.6", "mkdocs-material>=9.5", "mkdocstrings[python]>=0.25"],
        "dev": ["ruff==0.17.6", "pre-commit>=3"],  # ruff pinned: its formatting is checked in CI
    },
    entry_points={"console_scripts": ["oltr=oltr.cli:entry_point"]},
)
