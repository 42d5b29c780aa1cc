"""Smoke run of benchmarks/bench_finetune.py on a tiny ViT in place of CLIP ViT-B/16: it trains a few steps
of the LIFT config's recipe and reports throughput. Timings are never asserted."""

import importlib.util
from pathlib import Path

from conftest import require_extra

require_extra("timm")
require_extra("peft")

REPO = Path(__file__).resolve().parents[1]


def test_the_lift_recipe_runs_on_synthetic_images(monkeypatch, capsys):
    monkeypatch.chdir(REPO)
    spec = importlib.util.spec_from_file_location("bench_finetune", REPO / "benchmarks" / "bench_finetune.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    tiny = [
        "networks.feat_model.params.model_name=test_vit",
        "training_opt.transforms.input_size=160",
        "training_opt.feature_dim=64",
        "networks.feat_model.params.lora={target_modules: [qkv], r: 4}",
    ]
    result = bench.main(["--steps", "2", "--warmup", "1", "--batch", "2", "--device", "cpu", "--opts", *tiny])
    assert result["images_per_s"] > 0 and result["peak_gib"] is None and result["batch"] == 2
    # LoRA rank 4 on each of test_vit's qkv layers (64 wide): 4 x 64 + 3 x 64 x 4 per block
    import timm

    blocks = len(timm.create_model("test_vit").blocks)
    assert result["trainable"].startswith(f"finetune lora: {blocks * (4 * 64 + 3 * 64 * 4):,} of")
    assert "images/s" in capsys.readouterr().out
