import pytest
import torch

from vinet_utils.network import models as M
from vinet_utils.common.paper import BASE_PARAMS_M


@pytest.mark.parametrize("arch,classes", [("resnet18", 10), ("resnet34", 100)])
def test_base_params_match_paper_as_printed(arch, classes):
    # The paper prints millions with two decimals (0.68M, 14.20M): ours must round to it.
    model = M.build(arch, classes)
    for variant, paper_m in BASE_PARAMS_M[arch].items():
        ours = M.count_params(M.truncate(model, variant)) / 1e6
        assert round(ours, 2) == paper_m, (variant, ours, paper_m)


def test_full_model_counts():
    # docs/method.md §2: our full models come to 11.17M and 21.33M.
    assert round(M.count_params(M.resnet18(10)) / 1e6, 2) == 11.17
    assert round(M.count_params(M.resnet34(100)) / 1e6, 2) == 21.33


def test_truncate_shares_weights_and_matches_manual_forward():
    torch.manual_seed(0)
    model = M.resnet18(10, width=0.25).eval()
    x = torch.randn(3, 3, 32, 32)
    base = M.truncate(model, "layer3.1.conv1").eval()
    assert base[0].conv1.weight is model.conv1.weight
    with torch.no_grad():
        h = torch.relu(model.bn1(model.conv1(x)))
        h = model.layer3[0](model.layer2(model.layer1(h)))
        blk = model.layer3[1]
        want = torch.relu(blk.bn1(blk.conv1(h)))
        assert torch.allclose(base(x), want, atol=1e-6)
        assert torch.allclose(M.truncate(model, "layer4")(x).mean((2, 3)) @ model.linear.weight.T
                              + model.linear.bias, model(x), atol=1e-5)


@pytest.mark.parametrize("cut,shape", [("tiny", (32, 16, 16)), ("small", (64, 8, 8)),
                                       ("medium", (128, 4, 4)), ("large", (128, 4, 4)),
                                       ("layer1.0", (16, 32, 32))])
def test_truncated_output_shapes(cut, shape):
    base = M.truncate(M.resnet18(10, width=0.25), cut)
    assert tuple(base(torch.zeros(2, 3, 32, 32)).shape) == (2, *shape)


def test_variant_and_layer_name_give_the_same_cut():
    model = M.resnet34(100, width=0.125)
    for variant, layer in M.CUTS["resnet34"].items():
        assert M.count_params(M.truncate(model, variant)) == M.count_params(M.truncate(model, layer))


def test_bad_names_are_clear_errors():
    with pytest.raises(ValueError, match="arch must be one of resnet18, resnet34"):
        M.build("resnet50")
    with pytest.raises(ValueError, match="cut must be one of tiny, small, medium, large"):
        M.truncate(M.resnet18(), "layer9")
    with pytest.raises(ValueError, match="only 2 blocks"):
        M.truncate(M.resnet18(), "layer3.5.conv1")


def test_cut_table_counts_removed_convs():
    rows = {r["variant"]: r for r in M.cut_table(M.resnet18(10, width=0.25), "resnet18")}
    # ResNet-18 has 17 3x3 convs: the stem and 16 in blocks. Tiny keeps stem + 2 stages.
    assert rows["full"]["convs_removed"] == 0
    assert rows["tiny"]["convs_removed"] == 8
    assert rows["large"]["convs_removed"] == 1
    assert rows["tiny"]["base_params"] < rows["small"]["base_params"] < rows["full"]["base_params"]
