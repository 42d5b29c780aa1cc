# LIFT's fine-tuning protocol (Shi et al., "Long-Tail Learning with Foundation Model: Heavy Fine-Tuning
# Hurts", ICML 2024; shijxcs/LIFT configs/model/clip_vit_b16*.yaml and trainer.py) on timm's CLIP ViT-B/16,
# shared by ImageNet_LT/ and Places_LT/stage_2_finetune_clip_vit_b16.py: 10 epochs, batch 128, SGD lr 0.01
# (backbone adapters and classifier alike), momentum 0.9, weight decay 5e-4, cosine decay to 0, plain
# shuffling, logit-adjusted loss (tau 1), cosine classifier with scale 25, 224-px RandomResizedCrop + flip
# for training and resize 256 / centre crop 224 for testing, CLIP's mean and std, bf16 autocast.
# Parameter-efficient by LoRA on every block's qkv (training_opt.finetune.mode lora, rank = the dataset's
# LIFT adapter width); LIFT itself uses AdaptFormer, which peft does not provide. The head starts from the
# class means of the training features (LIFT's init_head class_mean) instead of CLIP's text features.
# What else differs (no test-time ensembling, the 768-d pre-projection features) is in docs/backbones.md.
# The weights: timm's hub weights (pretrained true, cached once) or a local file.
# Not a complete config on its own: a dataset's file adds its data, classes and LoRA rank.
_base_ = "stage_2_finetune.py"

config = {
    "training_opt": {
        "batch_size": 128,
        "num_epochs": 10,
        "feature_dim": 768,
        "finetune": {"mode": "lora", "classifier_init": "class_mean"},
        "scheduler": "cosine",
        "scheduler_params": {"eta_min": 0.0},
        "amp": "auto",
        "transforms": {
            "input_size": 224,
            "resize_size": 256,
            "crop_scale": [0.08, 1.0],
            "color_jitter": [0.0, 0.0, 0.0, 0.0],
            "horizontal_flip": True,
            "mean": [0.48145466, 0.4578275, 0.40821073],
            "std": [0.26862954, 0.26130258, 0.27577711],
        },
    },
    "networks": {
        "feat_model": {
            "type": "timm",
            "params": {
                "model_name": "vit_base_patch16_clip_224.openai",
                "pretrained": True,
                "use_modulatedatt": False,
                "use_fc": False,
            },
            "optim_params": {"lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4},
            "stage1_weights": False,
        },
        "classifier": {
            "type": "scaled_cosine",
            "params": {"scale": 25.0},
            "optim_params": {"lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4},
            "stage1_weights": False,
        },
    },
    "criterions": {"PerformanceLoss": {"loss": "logit_adjusted", "loss_params": {"tau": 1.0}, "weight": 1.0}},
}
