"""Fine-tuning a pretrained feature model (full or parameter-efficient), with any classifier and loss: ``finetune``.

The feature model starts from its pretrained weights (``networks.feat_model.params.pretrained``, e.g.
timm's CLIP ViT-B/16) or, where ``networks.feat_model.stage1_weights`` asks, from the stage-1 run; the
classifier (``dot_product``, ``scaled_cosine``, ``cosine_norm``) starts fresh unless its own ``stage1_weights``
says otherwise. ``training_opt.finetune.mode`` says which feature-model parameters train:

    full          all of them
    bias_norm     biases and the parameters of normalisation layers (BitFit-style), plus the layers
                  the feature model adds itself (fc_add, modulated attention)
    linear_probe  none: the feature model is frozen whole and runs in eval mode; only the classifier trains
    lora          the LoRA matrices peft adds to ``networks.feat_model.params.lora.target_modules``,
                  plus the layers the feature model adds itself

The classifier always trains. ``training_opt.finetune.classifier_init: class_mean`` starts a cosine
classifier (``scaled_cosine``, ``cosine_norm``) from the L2-normalised mean feature of each class, one pass
over the training images with test-time transforms before training (LIFT's alternative to CLIP's text
features); ``random`` (the default) keeps its init. ``config/recipes/stage_2_finetune.py`` is the shared config.
"""

from torch import nn

from ..common.errors import ConfigError
from .base import Recipe, register_recipe
from .decoupled import FrozenFeatureNetwork

# torch's normalisation layers; timm's own (RmsNorm, LayerNorm2d, BatchNormAct2d, ...) subclass these or are
# named ...Norm...
_NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm)


def is_norm(module):
    return isinstance(module, _NORMS) or "Norm" in type(module).__name__


def trainable_names(feat_model, mode):
    """The names of the feature model's parameters that ``mode`` trains."""
    added = getattr(feat_model, "TRAINABLE_WHEN_FIXED", ())
    names = set()
    for module_name, module in feat_model.named_modules():
        for leaf, _ in module.named_parameters(recurse=False):
            name = f"{module_name}.{leaf}" if module_name else leaf
            if mode == "full":
                keep = True
            elif mode == "linear_probe":
                keep = False
            elif mode == "bias_norm":
                keep = leaf == "bias" or is_norm(module) or name.startswith(added)
            else:  # lora
                keep = "lora_" in name or name.startswith(added)
            if keep:
                names.add(name)
    return names


@register_recipe
class FineTune(Recipe):
    name = "finetune"
    order = 5
    label = "fine-tune"

    def check(self, config, where):
        super().check(config, where)
        networks, mode = config["networks"], config["training_opt"]["finetune"]["mode"]
        lora = networks["feat_model"]["params"].get("lora")
        if mode == "lora" and not lora:
            raise ConfigError(
                f"{where}: training_opt.finetune.mode 'lora' needs networks.feat_model.params.lora "
                "(a timm feature model; e.g. {target_modules: [qkv], r: 8})"
            )
        if lora and mode != "lora":
            raise ConfigError(
                f"{where}: networks.feat_model.params.lora is set but training_opt.finetune.mode is {mode!r}; "
                "set the mode to 'lora' or drop params.lora"
            )
        if networks["feat_model"]["fix"]:
            raise ConfigError(
                f"{where}: networks.feat_model.fix is true, but in the finetune recipe training_opt.finetune.mode "
                "says what trains; set fix false (mode linear_probe freezes the whole feature model)"
            )
        memory = [f"memory.{key}" for key in ("centroids", "init_centroids") if config["memory"][key]]
        if memory:
            raise ConfigError(f"{where}: {memory[0]} belongs to the meta_embedding recipe, not 'finetune'; turn it off")
        classifier = networks["classifier"]["type"]
        if self.wants_class_means(config) and classifier not in ("scaled_cosine", "cosine_norm"):
            raise ConfigError(
                f"{where}: training_opt.finetune.classifier_init 'class_mean' sets the weights of a cosine "
                f"classifier ('scaled_cosine' or 'cosine_norm'), got networks.classifier.type {classifier!r}"
            )
        if classifier in ("meta_embedding", "lws", "tau_norm", "ncm"):
            raise ConfigError(
                f"{where}: the finetune recipe trains a dot_product, scaled_cosine or cosine_norm classifier, got "
                f"networks.classifier.type {classifier!r}"
            )

    def wants_class_means(self, config):
        return config["training_opt"]["finetune"]["classifier_init"] == "class_mean"

    def init_classifier(self, network, class_means):
        weight = network.classifier.weight
        weight.data.copy_(nn.functional.normalize(class_means.to(weight), dim=1))
        return f"finetune: classifier initialised from the class means of {weight.shape[0]} classes"

    def prepare_network(self, network, config):
        network, lines = super().prepare_network(network, config)
        mode = config["training_opt"]["finetune"]["mode"]
        feat_model = network.feat_model
        trainable = trainable_names(feat_model, mode)
        for name, param in feat_model.named_parameters():
            param.requires_grad_(name in trainable)
        network.classifier.requires_grad_(True)
        counts = [sum(p.numel() for p in feat_model.parameters() if p.requires_grad)]
        counts.append(sum(p.numel() for p in feat_model.parameters()))
        lines.append(f"finetune {mode}: {counts[0]:,} of {counts[1]:,} feature-model parameters train")
        if mode == "linear_probe":  # frozen whole: eval mode, no gradients, as the decoupled recipes
            network = FrozenFeatureNetwork(feat_model, network.classifier)
        return network, lines
