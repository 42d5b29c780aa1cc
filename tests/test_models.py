"""Tests for oltr.models: ResNet feature models, modulated attention, classifiers, builders.

References are independent of the code: float64 numpy written from OLTR's formulas,
hand-computed examples, closed-form parameter counts and torchvision's own models.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torchvision

from oltr.common.errors import CheckpointError, ConfigError
from oltr.models import (
    CosineNormClassifier,
    DotProductClassifier,
    MetaEmbeddingClassifier,
    ModulatedAttention,
    build_classifier,
    build_feature_model,
    last_feature_map_size,
)

# --------------------------------------------------------------------------- helpers


def count_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def softmax_np(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max())
    return e / e.sum()


def basic_resnet_param_count(layers, widths=(64, 128, 256, 512), stem_kernel=7) -> int:
    """Closed-form parameter count of a BasicBlock ResNet trunk (no fc)."""
    total = 3 * widths[0] * stem_kernel**2 + 2 * widths[0]  # stem conv + bn
    in_ch = widths[0]
    for stage, (width, blocks) in enumerate(zip(widths, layers)):
        for b in range(blocks):
            block_in = in_ch if b == 0 else width
            total += block_in * width * 9 + 2 * width  # conv1 + bn1
            total += width * width * 9 + 2 * width  # conv2 + bn2
            if b == 0 and (stage > 0 or block_in != width):
                total += block_in * width + 2 * width  # 1x1 shortcut + bn
        in_ch = width
    return total


@pytest.fixture(scope="module")
def resnet152():
    # Built once: ~1 s on CPU. No download (pretrained=None).
    torch.manual_seed(0)
    return build_feature_model("resnet152").eval()


# --------------------------------------------------------------------------- ResNet feature models


def test_resnet10_param_count_matches_closed_form():
    model = build_feature_model("resnet10")
    expected = basic_resnet_param_count((1, 1, 1, 1))
    assert expected == 4_905_792  # conv1 9408 + bn 128 + layers 73984 + 230144 + 919040 + 3673088
    assert count_params(model) == expected
    assert model.feature_dim == 512


def test_thin_resnet10_param_count_follows_base_channels():
    model = build_feature_model("resnet10", base_channels=8, small_input=True)
    assert count_params(model) == basic_resnet_param_count((1, 1, 1, 1), widths=(8, 16, 32, 64), stem_kernel=3)
    assert model.feature_dim == 64


@pytest.mark.parametrize("arch", ["resnet10", "resnet18", "resnet34", "resnet50", "resnet152"])
def test_backbone_keys_and_shapes_match_torchvision(arch):
    # Meta-device torchvision models: shapes without allocating or initialising weights.
    depth_layers = {"resnet10": (torchvision.models.resnet.BasicBlock, [1, 1, 1, 1])}
    with torch.device("meta"):
        if arch in depth_layers:
            reference = torchvision.models.ResNet(*depth_layers[arch])
        else:
            reference = getattr(torchvision.models, arch)()
        ours = build_feature_model(arch)
    expected = {k: tuple(v.shape) for k, v in reference.state_dict().items() if not k.startswith("fc.")}
    got = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    assert got == expected


def test_resnet152_feature_dim_and_forward(resnet152):
    assert resnet152.feature_dim == 2048
    with torch.no_grad():
        features, maps = resnet152(torch.randn(1, 3, 64, 64))
    assert features.shape == (1, 2048)
    assert maps is None


def test_resnet152_with_fc_gives_feature_dim_512():
    with torch.device("meta"):  # shapes only: no second real 60M-parameter init
        model = build_feature_model("resnet152", use_fc=True)
    assert model.backbone_dim == 2048
    assert model.feature_dim == 512
    assert model.fc_add.in_features == 2048 and model.fc_add.out_features == 512


def test_fc_add_is_relu_of_linear_of_pooled_features():
    torch.manual_seed(0)
    model = build_feature_model("resnet10", base_channels=4, small_input=True, use_fc=True, feature_dim=6).eval()
    x = torch.randn(3, 3, 8, 8)
    with torch.no_grad():
        features, _ = model(x)
        trunk = model.layer4(model.layer3(model.layer2(model.layer1(model.relu(model.bn1(model.conv1(x)))))))
        pooled = trunk.mean(dim=(2, 3))
        expected = torch.relu(pooled @ model.fc_add.weight.T + model.fc_add.bias)
    assert features.shape == (3, 6)
    torch.testing.assert_close(features, expected)


@pytest.mark.parametrize(
    "size, small_input", [(224, False), (32, False), (200, False), (8, True), (16, True), (17, True), (32, True)]
)
def test_last_feature_map_size_matches_a_real_forward(size, small_input):
    model = build_feature_model("resnet10", base_channels=4, small_input=small_input).eval()
    with torch.no_grad():
        x = model.maxpool(model.relu(model.bn1(model.conv1(torch.randn(1, 3, size, size)))))
        x = model.layer4(model.layer3(model.layer2(model.layer1(x))))
    assert x.shape[-1] == last_feature_map_size(size, small_input)


def test_standard_224_gives_7x7_and_small_16_gives_2x2():
    assert last_feature_map_size(224, small_input=False) == 7
    assert last_feature_map_size(16, small_input=True) == 2


def test_channels_last_input_gives_same_features():
    torch.manual_seed(0)
    model = build_feature_model(
        "resnet10", base_channels=8, small_input=True, input_size=16, use_modulatedatt=True, use_fc=True
    ).eval()
    torch.nn.init.normal_(model.modulatedatt.conv_mask.weight)  # make the attention path matter
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        contiguous, _ = model(x)
        channels_last, _ = model(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(channels_last, contiguous, rtol=1e-5, atol=1e-5)


def test_dropout_is_active_in_train_only():
    model = build_feature_model("resnet10", base_channels=4, small_input=True, dropout=0.5)
    assert isinstance(model.dropout, torch.nn.Dropout) and model.dropout.p == 0.5
    model.eval()
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        a, _ = model(x)
        b, _ = model(x)
    torch.testing.assert_close(a, b)


@pytest.mark.parametrize(
    "params, culprit",
    [
        ({"dropout": 1.5}, "dropout"),
        ({"base_channels": 0}, "base_channels"),
        ({"use_fc": "yes"}, "use_fc"),
        ({"input_size": "big"}, "input_size"),
        ({"feature_dim": -3}, "feature_dim"),
    ],
)
def test_bad_feature_params_raise_config_error(params, culprit):
    with pytest.raises(ConfigError, match=culprit):
        build_feature_model("resnet10", **params)


# --------------------------------------------------------------------------- pretrained weights


def test_pretrained_local_state_dict_is_loaded_into_backbone_only(tmp_path):
    torch.manual_seed(1)
    source = build_feature_model("resnet10", base_channels=8)
    state = source.state_dict()
    state["fc.weight"] = torch.randn(10, 64)  # a classifier head in the file is ignored
    state["fc.bias"] = torch.randn(10)
    path = tmp_path / "backbone.pth"
    torch.save(state, path)

    torch.manual_seed(2)
    fresh_fc = build_feature_model("resnet10", base_channels=8, use_fc=True).fc_add.weight.clone()
    torch.manual_seed(2)
    loaded = build_feature_model("resnet10", base_channels=8, use_fc=True, pretrained=str(path))
    torch.testing.assert_close(loaded.layer3[0].conv2.weight, source.layer3[0].conv2.weight, rtol=0, atol=0)
    torch.testing.assert_close(loaded.bn1.running_var, source.bn1.running_var, rtol=0, atol=0)
    # fc_add keeps the same fresh init it would have had without pretrained weights.
    torch.testing.assert_close(loaded.fc_add.weight, fresh_fc, rtol=0, atol=0)


def test_pretrained_missing_file_raises_checkpoint_error(tmp_path):
    path = tmp_path / "nope.pth"
    with pytest.raises(CheckpointError, match="nope.pth"):
        build_feature_model("resnet10", pretrained=str(path))


def test_pretrained_mismatched_file_raises_checkpoint_error(tmp_path):
    path = tmp_path / "thin.pth"
    torch.save(build_feature_model("resnet10", base_channels=8).state_dict(), path)
    with pytest.raises(CheckpointError, match="shape mismatch"):
        build_feature_model("resnet10", base_channels=16, pretrained=str(path))
    torch.save({"conv1.weight": torch.zeros(8, 3, 7, 7)}, path)
    with pytest.raises(CheckpointError, match="missing keys"):
        build_feature_model("resnet10", base_channels=8, pretrained=str(path))


def test_pretrained_imagenet_uses_torchvision_weights(monkeypatch):
    # Stand-in for the download: a real torchvision resnet18's state dict, without
    # num_batches_tracked as in torchvision's IMAGENET1K_V1 files.
    torch.manual_seed(3)
    reference = torchvision.models.resnet18()
    reference_state = {k: v for k, v in reference.state_dict().items() if not k.endswith("num_batches_tracked")}
    requested = []

    def fake_get_state_dict(self, *args, **kwargs):
        requested.append(self)
        return reference_state

    monkeypatch.setattr(torchvision.models.ResNet18_Weights, "get_state_dict", fake_get_state_dict)
    model = build_feature_model("resnet18", pretrained="imagenet", use_fc=True)
    assert requested == [torchvision.models.ResNet18_Weights.IMAGENET1K_V1]
    torch.testing.assert_close(model.layer4[1].conv2.weight, reference.layer4[1].conv2.weight, rtol=0, atol=0)
    torch.testing.assert_close(
        model.layer2[0].downsample[1].running_mean, reference.layer2[0].downsample[1].running_mean
    )


def test_pretrained_imagenet_download_failure_is_a_checkpoint_error(monkeypatch):
    def offline(self, *args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr(torchvision.models.ResNet18_Weights, "get_state_dict", offline)
    with pytest.raises(CheckpointError, match="pretrained=<path"):
        build_feature_model("resnet18", pretrained="imagenet")


def test_pretrained_imagenet_rejects_nonstandard_nets():
    with pytest.raises(ConfigError, match="resnet10"):
        build_feature_model("resnet10", pretrained="imagenet")
    with pytest.raises(ConfigError, match="base_channels"):
        build_feature_model("resnet18", pretrained="imagenet", base_channels=32)


# --------------------------------------------------------------------------- modulated attention


def attention_reference(x: np.ndarray, att: ModulatedAttention) -> np.ndarray:
    """OLTR's modulated attention for one sample, written with explicit positions (float64)."""
    c, h, w = x.shape
    p = {k: v.detach().double().numpy() for k, v in att.state_dict().items()}
    positions = x.reshape(c, h * w).T  # (HW, C): row i is the feature at position i

    def conv1x1(name):
        return positions @ p[f"{name}.weight"][:, :, 0, 0].T + p[f"{name}.bias"]

    g, theta, phi = conv1x1("g"), conv1x1("theta"), conv1x1("phi")
    attended = np.zeros_like(g)
    for i in range(h * w):  # query position i attends over key positions j
        weights = softmax_np(np.array([theta[i] @ phi[j] for j in range(h * w)]))
        attended[i] = sum(weights[j] * g[j] for j in range(h * w))
    mask = attended @ p["conv_mask.weight"][:, :, 0, 0].T  # (HW, C)
    spatial = softmax_np(p["fc_spatial.weight"] @ x.reshape(-1) + p["fc_spatial.bias"])  # flatten in (C, H, W)
    out = spatial[:, None] * mask + positions
    return out.T.reshape(c, h, w)


def test_attention_matches_position_wise_reference():
    torch.manual_seed(0)
    att = ModulatedAttention(in_channels=4, height=2, width=3).double()
    torch.nn.init.normal_(att.conv_mask.weight)  # non-zero so the attention path is checked
    x = torch.randn(2, 4, 2, 3, dtype=torch.float64)
    out, (identity, spatial, mask) = att(x)
    for b in range(2):
        np.testing.assert_allclose(out[b].detach().numpy(), attention_reference(x[b].numpy(), att), rtol=1e-10)
    assert identity is x
    assert spatial.shape == (2, 1, 2, 3) and mask.shape == (2, 4, 2, 3)


def test_attention_is_identity_at_init_and_spatial_softmax_sums_to_one():
    torch.manual_seed(0)
    att = ModulatedAttention(in_channels=8, height=3, width=3)
    x = torch.randn(5, 8, 3, 3)
    out, (_, spatial, _) = att(x)
    assert out.shape == x.shape
    assert torch.equal(out, x)
    torch.testing.assert_close(spatial.sum(dim=(1, 2, 3)), torch.ones(5))
    assert (spatial > 0).all()


def test_attention_init_scheme():
    torch.manual_seed(0)
    att = ModulatedAttention(in_channels=64, height=2, width=2)
    assert torch.count_nonzero(att.conv_mask.weight) == 0 and att.conv_mask.bias is None
    for conv in (att.g, att.theta, att.phi):
        assert torch.count_nonzero(conv.bias) == 0
        # Kaiming normal, fan_in = 64: std sqrt(2/64) ~ 0.177 over 2048 weights.
        assert abs(conv.weight.std().item() - math.sqrt(2 / 64)) < 0.02


def test_resnet10_attention_shapes_at_224_match_oltr():
    model = build_feature_model("resnet10", use_modulatedatt=True)
    att = model.modulatedatt
    assert model.feature_map_size == (7, 7)
    assert tuple(att.fc_spatial.weight.shape) == (49, 512 * 49)
    assert tuple(att.g.weight.shape) == (256, 512, 1, 1)
    assert tuple(att.conv_mask.weight.shape) == (512, 256, 1, 1)


def test_small_input_16px_gives_2x2_attention_and_runs():
    model = build_feature_model("resnet10", small_input=True, input_size=16, use_modulatedatt=True, base_channels=8)
    assert model.feature_map_size == (2, 2)
    features, maps = model(torch.randn(3, 3, 16, 16))
    assert features.shape == (3, 64)
    assert maps[1].shape == (3, 1, 2, 2)
    features.sum().backward()
    assert model.modulatedatt.fc_spatial.weight.grad is not None


def test_attention_spatial_size_mismatch_names_input_size():
    model = build_feature_model("resnet10", small_input=True, input_size=16, use_modulatedatt=True, base_channels=4)
    with pytest.raises(ConfigError, match="input_size"):
        model(torch.randn(1, 3, 32, 32))


# --------------------------------------------------------------------------- classifiers


def test_dot_product_classifier():
    clf = DotProductClassifier(in_dim=3, num_classes=2)
    x = torch.randn(4, 3)
    logits, extras = clf(x)
    assert extras is None
    torch.testing.assert_close(logits, x @ clf.fc.weight.T + clf.fc.bias)


def test_cosine_norm_classifier_matches_formula():
    torch.manual_seed(0)
    clf = CosineNormClassifier(in_dim=5, num_classes=3, scale=16).double()
    x = torch.randn(4, 5, dtype=torch.float64) * 3
    logits, extras = clf(x)
    assert extras is None
    w = clf.weight.detach().numpy()
    for i, xi in enumerate(x.numpy()):
        norm = np.sqrt(np.sum(xi**2))
        for k in range(3):
            cosine = (xi / norm) @ (w[k] / np.sqrt(np.sum(w[k] ** 2)))
            assert logits[i, k].item() == pytest.approx(16 * norm / (1 + norm) * cosine, rel=1e-12)


def test_cosine_norm_classifier_init_and_zero_input():
    clf = CosineNormClassifier(in_dim=100, num_classes=50)
    bound = 1 / math.sqrt(100)
    assert clf.weight.abs().max() <= bound and clf.weight.abs().max() > 0.9 * bound
    logits, _ = clf(torch.zeros(2, 100))
    assert torch.equal(logits, torch.zeros(2, 50))  # |x|/(1+|x|) -> 0, no NaN


def hand_set_meta_embedding() -> MetaEmbeddingClassifier:
    clf = MetaEmbeddingClassifier(in_dim=2, num_classes=3).double()
    with torch.no_grad():
        clf.fc_hallucinator.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
        clf.fc_hallucinator.bias.copy_(torch.tensor([0.0, 0.5, -1.0]))
        clf.fc_selector.weight.copy_(torch.tensor([[2.0, 0.0], [0.0, -1.0]]))
        clf.fc_selector.bias.copy_(torch.tensor([0.0, 0.25]))
        clf.cosnorm_classifier.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, -1.0]]))
    return clf


CENTROIDS = [[1.0, 0.0], [0.0, 2.0], [-1.0, -1.0]]


def test_meta_embedding_matches_hand_computation():
    clf = hand_set_meta_embedding()
    x = [0.5, 0.5]
    logits, (direct, infused) = clf(
        torch.tensor([x], dtype=torch.float64), torch.tensor(CENTROIDS, dtype=torch.float64)
    )

    # Step by step, float64, from OLTR's equations.
    # 1) distances to the centroids: sqrt(0.5), sqrt(2.5), sqrt(4.5); reach = 10 / sqrt(0.5)
    d = [math.sqrt((x[0] - m[0]) ** 2 + (x[1] - m[1]) ** 2) for m in CENTROIDS]
    assert d[0] == pytest.approx(math.sqrt(0.5))
    reach = 10.0 / min(d)  # = 14.1421356...
    # 2) hallucinator logits W_h x + b_h = [0.5, 1.0, 0.0] -> softmax -> memory weights
    h = [0.5 + 0.0, 0.5 + 0.5, 0.5 + 0.5 - 1.0]
    v = [math.exp(z) / sum(math.exp(t) for t in h) for z in h]
    # 3) memory feature v @ M
    mem = [sum(v[k] * CENTROIDS[k][j] for k in range(3)) for j in range(2)]
    # 4) selector tanh(W_s x + b_s) = tanh([1.0, -0.25])
    e = [math.tanh(2 * 0.5), math.tanh(-0.5 + 0.25)]
    # 5) meta-embedding
    infused_expected = [e[j] * mem[j] for j in range(2)]
    x_meta = [reach * (x[j] + infused_expected[j]) for j in range(2)]
    # 6) cosine-norm logits, weights rows [1,0], [0,1], [1,-1]/sqrt(2)
    norm = math.sqrt(x_meta[0] ** 2 + x_meta[1] ** 2)
    unit = [x_meta[0] / norm, x_meta[1] / norm]
    cosines = [unit[0], unit[1], (unit[0] - unit[1]) / math.sqrt(2)]
    expected = [16 * norm / (1 + norm) * c for c in cosines]

    np.testing.assert_allclose(logits[0].detach().numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(direct[0].numpy(), x, rtol=0)
    np.testing.assert_allclose(infused[0].detach().numpy(), infused_expected, rtol=1e-12)


def test_meta_embedding_batch_rows_are_independent_and_nearest_centroid_is_used():
    clf = hand_set_meta_embedding()
    centroids = torch.tensor(CENTROIDS, dtype=torch.float64)
    x = torch.tensor([[0.5, 0.5], [-0.9, -1.2], [0.1, 1.7]], dtype=torch.float64)
    logits, _ = clf(x, centroids)
    for i in range(3):
        single, _ = clf(x[i : i + 1], centroids)
        torch.testing.assert_close(logits[i : i + 1], single)
    # Feature on a centroid: distance 0 is guarded, logits stay finite.
    on_centroid, _ = clf(centroids[1:2].clone(), centroids)
    assert torch.isfinite(on_centroid).all()


def test_meta_embedding_sends_no_gradient_to_centroids():
    torch.manual_seed(0)
    clf = MetaEmbeddingClassifier(in_dim=4, num_classes=3)
    centroids = torch.randn(3, 4, requires_grad=True)
    x = torch.randn(5, 4, requires_grad=True)
    logits, _ = clf(x, centroids)
    logits.square().sum().backward()
    assert centroids.grad is None
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert clf.fc_hallucinator.weight.grad.abs().sum() > 0


def test_meta_embedding_requires_centroids_of_the_right_shape():
    clf = MetaEmbeddingClassifier(in_dim=4, num_classes=3)
    with pytest.raises(ValueError, match="centroids"):
        clf(torch.randn(2, 4))
    with pytest.raises(ValueError, match=r"\(3, 4\)"):
        clf(torch.randn(2, 4), torch.randn(4, 3))


def test_init_from_stage1_copies_dot_product_weights():
    stage1 = DotProductClassifier(in_dim=6, num_classes=4)
    clf = MetaEmbeddingClassifier(in_dim=6, num_classes=4)
    clf.init_from_stage1(stage1.state_dict())
    assert torch.equal(clf.fc_hallucinator.weight, stage1.fc.weight)
    assert torch.equal(clf.fc_hallucinator.bias, stage1.fc.bias)
    assert clf.fc_hallucinator.weight.data_ptr() != stage1.fc.weight.data_ptr()  # a copy, not shared


def test_init_from_stage1_rejects_wrong_shapes_and_keys():
    clf = MetaEmbeddingClassifier(in_dim=6, num_classes=4)
    with pytest.raises(CheckpointError, match="num_classes"):
        clf.init_from_stage1(DotProductClassifier(in_dim=6, num_classes=5).state_dict())
    with pytest.raises(CheckpointError, match="fc.weight"):
        clf.init_from_stage1({"weight": torch.zeros(4, 6)})


# --------------------------------------------------------------------------- builders


def test_build_classifier_types_and_params():
    assert isinstance(build_classifier("dot_product", in_dim=8, num_classes=3), DotProductClassifier)
    cosine = build_classifier("cosine_norm", in_dim=8, num_classes=3, scale=10)
    assert isinstance(cosine, CosineNormClassifier) and cosine.scale == 10
    meta = build_classifier("meta_embedding", in_dim=8, num_classes=3)
    assert isinstance(meta, MetaEmbeddingClassifier)
    assert tuple(meta.fc_selector.weight.shape) == (8, 8)


def test_builder_unknown_type_lists_valid_and_closest():
    with pytest.raises(ConfigError, match=r"resnet10, resnet18.*did you mean 'resnet152'"):
        build_feature_model("resnet15")
    with pytest.raises(ConfigError, match=r"dot_product, cosine_norm, meta_embedding.*'meta_embedding'"):
        build_classifier("metaembedding", in_dim=4, num_classes=2)


def test_builder_unknown_param_is_named():
    with pytest.raises(ConfigError, match=r"'use_attention'.*valid params: use_modulatedatt"):
        build_feature_model("resnet10", use_attention=True)
    with pytest.raises(ConfigError, match=r"'use_fcc'.*did you mean 'use_fc'"):
        build_feature_model("resnet10", use_fcc=True)
    with pytest.raises(ConfigError, match="'feat_dim'"):
        build_classifier("dot_product", feat_dim=4, num_classes=2)
    with pytest.raises(ConfigError, match="num_classes"):
        build_classifier("dot_product", in_dim=4)
