# ImageNet-LT: LIFT's protocol on CLIP ViT-B/16 (config/recipes/finetune_clip_vit_b16.py) over this dataset's
# data. LoRA rank 32 on qkv: LIFT's adapter width 2^floor(log2(1000 classes / (2 x 12 blocks))) = 32.
# Published (LIFT, ICML 2024): 78.3 top-1. One run, no stage 1:
#   python main.py --config config/ImageNet_LT/stage_2_finetune_clip_vit_b16.py
# Another mode or loss: --opts training_opt.finetune.mode=full networks.feat_model.params.lora=null, or
# --overlay config/losses/<loss>.py.
_base_ = ["stage_1.py", "../recipes/finetune_clip_vit_b16.py"]

config = {
    "training_opt": {"log_dir": "logs/ImageNet_LT/finetune_clip_vit_b16", "stage1_log_dir": None},
    "networks": {"feat_model": {"params": {"lora": {"target_modules": ["qkv"], "r": 32, "alpha": 32}}}},
}
