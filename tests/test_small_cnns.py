"""The two small CNNs of the data randomisation test (vizkit.small_cnns): training, shipping, loading."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

import vizkit
from vizkit import small_cnns

TOOL = Path(__file__).parent.parent / "tools" / "train_small_cnns.py"


def test_training_a_few_steps_writes_networks_that_load_and_a_record(tmp_path):
    spec = importlib.util.spec_from_file_location("train_small_cnns", TOOL)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.main(["--steps", "3", "--out", str(tmp_path)]) == 0
    record = small_cnns.training_record(tmp_path)
    assert set(record) == set(small_cnns.NETWORKS)
    for kind in small_cnns.NETWORKS:
        assert record[kind]["steps"] == 3 and record[kind]["params"] == 241219
        net = small_cnns.load(kind, tmp_path)
        assert not net.training and net(torch.zeros(2, 3, 64, 64)).shape == (2, 3)


def test_shuffled_labels_are_a_permutation_of_the_true_ones():
    images, labels = small_cnns.training_set("true")
    same_images, shuffled = small_cnns.training_set("shuffled")
    assert np.array_equal(images, same_images)
    assert np.array_equal(np.bincount(labels, minlength=3), np.bincount(shuffled, minlength=3))
    assert (labels != shuffled).mean() > 0.5
    assert set(labels.tolist()) == {0, 1, 2}


def test_shipped_networks_learned_and_memorised():
    """The true-label network recognises new composites; the shuffled-label one knows its training
    set (it memorised it) and is near chance (1/3) on new pictures."""
    record = small_cnns.training_record()
    assert record["true"]["train_accuracy"] >= 0.95 and record["shuffled"]["train_accuracy"] >= 0.95
    images, labels, _ = small_cnns.labelled_composites(150, seed=4000)
    assert small_cnns.accuracy(small_cnns.load("true"), images, labels) >= 0.9
    assert small_cnns.accuracy(small_cnns.load("shuffled"), images, labels) <= 0.55
    train_images, shuffled = small_cnns.training_set("shuffled")
    assert small_cnns.accuracy(small_cnns.load("shuffled"), train_images, shuffled) >= 0.95


def test_the_cam_family_runs_on_a_small_cnn_at_its_layer():
    net = small_cnns.load("true")
    x = vizkit.to_batch(small_cnns.SmallCNN(), small_cnns.labelled_composites(2, seed=5)[0], crop=False)
    assert vizkit.cam(net, x, [0, 1]).shape == (2, 8, 8)
    assert vizkit.grad_cam(net, x, [0, 1], layer=small_cnns.LAYER).shape == (2, 8, 8)


def test_unknown_kind_names_the_kinds():
    with pytest.raises(FileNotFoundError, match="true"):
        small_cnns.load("random")
    with pytest.raises(ValueError, match="shuffled"):
        small_cnns.train("random", steps=1)
