# Places-LT: LIFT's protocol on CLIP ViT-B/16 (config/recipes/finetune_clip_vit_b16.py) over this dataset's
# data. LoRA rank 8 on qkv: LIFT's adapter width 2^floor(log2(365 classes / (2 x 12 blocks))) = 8.
# Published (LIFT, ICML 2024): 52.2 top-1. One run, no stage 1:
#   python main.py --config config/Places_LT/stage_2_finetune_clip_vit_b16.py
_base_ = ["stage_1.py", "../recipes/finetune_clip_vit_b16.py"]

config = {
    "training_opt": {"log_dir": "logs/Places_LT/finetune_clip_vit_b16", "stage1_log_dir": None},
    "networks": {"feat_model": {"params": {"lora": {"target_modules": ["qkv"], "r": 8, "alpha": 8}}}},
}
