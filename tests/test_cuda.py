"""Every public method on CPU and on CUDA, same weights, same targets: same answer (rtol 1e-3).

Skipped cleanly where torch sees no CUDA device. TF32 is off so that matrix products on the GPU are
float32 like the CPU's; iterative methods take one step, so differences do not compound. Each call
must leave no hook on the model and give back the GPU memory it took."""

import numpy as np
import pytest
import torch

import vizkit
from vizkit import (
    attacks,
    classvis,
    data,
    dreams,
    fast_style,
    hooks,
    metrics,
    objectives,
    optvis,
    paintings,
    style,
)

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="torch sees no CUDA device"),
]

LAYER = "blocks.4"
# every attribution method of the registry, with settings that keep each to a few passes
CHEAP = {"integrated gradients": dict(steps=4), "SmoothGrad": dict(smooth=2), "RISE": dict(n_masks=16),
         "occlusion": dict(size=64, stride=64)}  # fmt: skip


def attribution(name):
    method = vizkit.METHODS[name]
    return lambda m, x: method.maps(m, x, [285, 967], layer=LAYER, **CHEAP.get(name, {}))


CASES = {
    "input_gradient": lambda m, x: vizkit.input_gradient(m, x, [285, 967]),
    **{name: attribution(name) for name in vizkit.METHODS},
    "features": lambda m, x: vizkit.features(m, list(data.composites(2, seed=0, size=128)[0]), layer=LAYER),
    "layer_output": lambda m, x: vizkit.layer_output(m, x, LAYER),
    "top_patches": lambda m, x: (
        vizkit.top_patches(m, list(data.composites(2, seed=0, size=128)[0]), LAYER, [0, 1], k=2).values
    ),
    "dissect": lambda m, x: vizkit.dissect(m, *data.composites(4, seed=0, size=128)[::2], layer=LAYER),
    "deletion_curve": lambda m, x: metrics.deletion_curve(
        m, x[:1], 285, np.linspace(0, 1, 224 * 224).reshape(224, 224), fractions=(0.0, 0.5, 1.0)
    ),
    "transform_robustness": lambda m, x: np.array(metrics.transform_robustness(m, x[:1], 285, n=8)),
    "fgsm": lambda m, x: attacks.fgsm(m, x, [285, 967], 2 / 255),
    "fooling_step": lambda m, x: optvis.ascent(
        m,
        objectives.class_score("daisy"),
        x[:1],
        1,
        lr=1.0,
        optimizer="l2",
        projections=[optvis.clamp_pixels(m)],
        progress=False,
    ),
    "class_visualization": lambda m, x: classvis.class_visualization(
        m, "flamingo", steps=1, size=96, progress=False
    ),
    "deepdream": lambda m, x: dreams.deepdream(m, x[:1], LAYER, octaves=1, steps=1, progress=False),
    "invert": lambda m, x: style.invert(m, x[:1], LAYER, steps=1, progress=False),
    "texture_synthesis": lambda m, x: style.texture_synthesis(
        m, data.photo("coffee"), size=64, steps=1, optimizer="adam", progress=False
    ),
    "style_transfer": lambda m, x: style.style_transfer(
        m,
        data.photo("chelsea"),
        paintings.painting("swirls"),
        size=64,
        steps=1,
        optimizer="adam",
        progress=False,
    ),
}


@pytest.fixture(scope="module")
def models():
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    return (
        vizkit.load_model("efficientnet_lite0", device="cpu", verbose=False),
        vizkit.load_model("efficientnet_lite0", device="cuda", verbose=False),
    )


def as_array(result):
    if isinstance(result, torch.Tensor):
        return result.detach().cpu().numpy()
    return np.asarray(result)


@pytest.mark.parametrize("name", CASES)
def test_cpu_and_cuda_agree_and_leave_nothing_behind(models, name):
    cpu, gpu = models
    photos = [data.photo("chelsea"), data.photo("coffee")]
    x_cpu = torch.cat([cpu.preprocess(p) for p in photos])
    x_gpu = x_cpu.cuda()
    torch.manual_seed(0)
    expected = as_array(CASES[name](cpu, x_cpu))
    torch.cuda.synchronize()
    before = torch.cuda.memory_allocated()
    torch.manual_seed(0)
    got = CASES[name](gpu, x_gpu)
    got = as_array(got)
    torch.cuda.synchronize()
    assert hooks.count_hooks(gpu) == 0
    assert torch.cuda.memory_allocated() == before, "GPU memory was not given back"
    assert got.shape == expected.shape
    scale = float(np.abs(expected).max()) or 1.0
    np.testing.assert_allclose(got, expected, rtol=1e-3, atol=1e-3 * scale)


def test_stylize_agrees(models):
    # the shipped fast-style network runs on the CPU; a GPU copy must give the same picture
    net = fast_style.load_fast_style("swirls")
    img = torch.from_numpy(data.photo("chelsea")[:128, :128]).permute(2, 0, 1)[None].float() / 255
    with torch.no_grad():
        a, b = net(img), net.cuda()(img.cuda()).cpu()
    np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-3, atol=1e-3)
