"""The distilled ViT of notebook 14 (vizkit.vit): training, resuming, shipping, loading."""

import importlib.util
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from vizkit import vit

TOOL = Path(__file__).parent.parent / "tools" / "train_vit.py"


def tiny_set(n: int = 12) -> tuple[np.ndarray, torch.Tensor]:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, vit.SIZE, vit.SIZE, 3), dtype=np.uint8), torch.randn(n, 1000).half()


def test_a_resumed_run_is_the_run_it_continues(tmp_path, monkeypatch):
    """Cut a 4-step run after its step-2 checkpoint, start it again: the same weights as in one go."""
    images, logits = tiny_set()
    recipe = replace(vit.Distillation(), steps=4, batch=4)
    whole, _ = vit.train(images, logits, recipe)
    saves, real_save = [], torch.save

    def save_then_stop(obj, path):
        real_save(obj, path)
        saves.append(path)
        raise KeyboardInterrupt  # the run is cut short right after its first checkpoint

    monkeypatch.setattr(vit.torch, "save", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        vit.train(images, logits, recipe, checkpoint=tmp_path / "ck.pt", every=2)
    monkeypatch.setattr(vit.torch, "save", real_save)
    assert torch.load(tmp_path / "ck.pt", weights_only=True)["step"] == 2
    resumed, record = vit.train(images, logits, recipe, checkpoint=tmp_path / "ck.pt", every=2)
    for (name, a), b in zip(whole.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    assert record["steps"] == 4 and record["params"] == 2150600


def test_the_tool_writes_fp16_weights_that_load_and_a_record(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("train_vit", TOOL)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    args = ["--steps", "2", "--batch", "4", "--composites", "8", "--views", "4", "--held-out", "4"]
    assert tool.main(args + ["--out", str(tmp_path / "out"), "--work", str(tmp_path / "work")]) == 0
    record = vit.training_record(tmp_path / "out")
    assert record["steps"] == 2 and record["train_pictures"] == 12
    assert 0 <= record["agreement_composites"] <= 1 and 0 <= record["agreement_photo_views"] <= 1
    state = torch.load(tmp_path / "out" / vit.WEIGHTS_FILE, weights_only=True)
    assert all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())
    net = vit.load(tmp_path / "out")
    assert not net.training and net(torch.zeros(2, 3, vit.SIZE, vit.SIZE)).shape == (2, 1000)


def test_missing_weights_say_how_to_make_them(tmp_path):
    with pytest.raises(FileNotFoundError, match="make train-vit"):
        vit.load(tmp_path)


@pytest.mark.skipif(not (vit.WEIGHTS_DIR / vit.WEIGHTS_FILE).exists(), reason="no shipped ViT weights")
def test_shipped_weights_fit_the_limit_and_agree_with_the_teacher():
    path = vit.WEIGHTS_DIR / vit.WEIGHTS_FILE
    assert path.stat().st_size <= 5 * 2**20
    torch.load(path, weights_only=True)  # no pickled code
    record = vit.training_record()
    assert record["agreement_composites"] >= 0.75, record


@pytest.mark.skipif(not (vit.WEIGHTS_DIR / vit.WEIGHTS_FILE).exists(), reason="no shipped ViT weights")
def test_load_model_gives_the_distilled_vit_like_the_others():
    import vizkit

    model = vizkit.load_model("vit_distilled", verbose=False)
    assert model.crop_size == vit.SIZE and model.mean == (0.5, 0.5, 0.5) and len(model.classes) == 1000
    x = model.preprocess(vizkit.data.photo("chelsea"))
    assert x.shape == (1, 3, vit.SIZE, vit.SIZE) and model(x).shape == (1, 1000)
    assert vizkit.layers.token_grid(model, x.shape[2:]) == (1, 8, 8)


def plant_in_hf_cache(cache: Path, repo: str, state: dict) -> Path:
    """Weights where huggingface_hub's cache keeps a downloaded model.safetensors (refs/main -> snapshot)."""
    from safetensors.torch import save_file

    folder = cache / f"models--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text("0" * 40)
    snapshot = folder / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in state.items()}, snapshot / "model.safetensors")
    return snapshot / "model.safetensors"


@pytest.mark.parametrize("name", ["deit_tiny", "dino_vits16"])
def test_timm_vits_load_from_the_hugging_face_cache(tmp_path, monkeypatch, name):
    """Offline, a real ViT loads when its file is in the Hugging Face cache (here: planted random weights),
    with timm's transform and normalisation; DINO has no classifier, so no class names."""
    import timm

    import vizkit

    arch = vizkit.models.TIMM_VITS[name]
    torch.manual_seed(1)
    planted = timm.create_model(arch, pretrained=False).state_dict()
    plant_in_hf_cache(tmp_path, f"timm/{arch}", planted)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    model = vizkit.load_model(name, verbose=False)
    assert model.crop_size == 224 and model.mean == (0.485, 0.456, 0.406)
    assert all(torch.equal(v, planted[k]) for k, v in model.net.state_dict().items())
    assert len(model.classes) == (0 if name == "dino_vits16" else 1000)
    assert vizkit.attention_rollout(model, torch.zeros(1, 3, 224, 224)).shape == (1, 14, 14)


def test_a_timm_vit_neither_cached_nor_reachable_says_what_to_do(tmp_path, monkeypatch):
    import vizkit

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("VIZKIT_OFFLINE", "1")
    with pytest.raises(vizkit.WeightsUnavailable, match="not in the Hugging Face cache.*vit_distilled"):
        vizkit.load_model("deit_small", verbose=False)
