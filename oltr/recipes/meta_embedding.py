"""OLTR's stage 2 (Liu et al., CVPR 2019): ``meta_embedding``.

The stage-1 weights (``networks.*.stage1_weights``), modulated attention and ``fc_add``, the
meta-embedding classifier over the class centroids (``memory``) and the class-aware sampler, all set
by ``config/recipes/stage_2_meta_embedding.py``; the trainer trains it as any run. Its runs keep the
sweep's ``stage2_<loss>`` directories, and the report names its rows "OLTR + <loss>".
"""

from .base import Recipe, register_recipe


@register_recipe
class MetaEmbedding(Recipe):
    name = "meta_embedding"
    order = 0

    @property
    def run_dir_suffix(self):
        return ""
