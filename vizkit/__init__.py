"""vizkit: visualizing and understanding convolutional networks (CS231n lecture 12), in notebooks.

Data flows one way: model -> hooks -> method -> array -> plot. Notebooks import from here."""
from . import data, hooks, metrics, optvis, plot
from .attribution import (backprop, cam, deconvnet, grad_cam, guided_backprop, guided_grad_cam, input_gradient,
                          occlusion, saliency)
from .activations import dissect, features, layer_output, receptive_field, top_patches
from .hooks import frozen, preserved, record, relu_rule, swap_modules
from .images import to_rgb
from .layers import check_batch, get_layer, layer_names
from .optvis import ascent, class_visualization, deepdream, fgsm, fooling_image
from .models import CLASSIC_MODELS, MODEL_NAMES, Model, WeightsUnavailable, load_model
from .settings import choose, fast_mode, setup

__version__ = "0.1.0"
