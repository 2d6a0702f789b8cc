"""vizkit: visualizing and understanding convolutional networks (CS231n lecture 12), in notebooks.

Data flows one way: model -> hooks -> method -> array -> plot. Notebooks import from here."""

from .versions import check_versions

check_versions()  # before torch or matplotlib: an old one gets one clear line, not a deep traceback

from . import (
    attacks,
    classvis,
    data,
    dictionaries,
    dreams,
    exercises,
    fast_style,
    hooks,
    inputs,
    metrics,
    objectives,
    optvis,
    plot,
    style,
)
from .activations import (
    dissect,
    dissect_by_label,
    features,
    layer_output,
    nearest_neighbours,
    top_patches,
)
from .attacks import fgsm, fooling_image
from .attention import attention_maps, attention_relevance, attention_rollout
from .attribution import backprop, deconvnet, guided_backprop, input_gradient, occlusion, saliency, smooth
from .cams import cam, grad_cam, grad_cam_plus_plus, guided_grad_cam, layer_cam, score_cam
from .classvis import class_visualization
from .dictionaries import SparseAutoencoder, nmf, train_sae
from .dreams import deepdream
from .fast_style import TransformerNet, fast_style_names, stylize, train_fast_style
from .gradients import gradient_x_input, integrated_gradients
from .hooks import frozen, preserved, record, relu_rule, swap_modules
from .images import to_rgb
from .inputs import Targets, probability_of, to_batch, to_image, to_input
from .interventions import ablated, edited, steered
from .layers import check_batch, get_layer, layer_names
from .margins import expect
from .methods import METHODS, Method
from .models import CLASSIC_MODELS, MODEL_NAMES, Model, WeightsUnavailable, load_model
from .optvis import ascent
from .receptive_fields import receptive_field
from .rise import rise
from .settings import choose, fast_mode, seed, setup
from .style import efros_leung, gram, invert, style_transfer, texture_synthesis

__version__ = "0.1.0"

# fmt: off
__all__ = [
    "ablated", "ascent", "attacks", "attention_maps", "attention_relevance", "attention_rollout", "backprop", "cam", "check_batch", "choose", "class_visualization",
    "CLASSIC_MODELS", "classvis", "data", "deconvnet", "deepdream", "dictionaries", "dissect", "dissect_by_label", "dreams", "edited", "efros_leung",
    "exercises", "expect", "fast_mode", "fast_style", "fast_style_names", "features", "fgsm",
    "fooling_image", "frozen", "get_layer", "grad_cam", "grad_cam_plus_plus", "gradient_x_input", "gram",
    "guided_backprop", "guided_grad_cam", "hooks", "input_gradient", "inputs", "integrated_gradients",
    "invert", "layer_cam", "layer_names", "layer_output", "load_model", "Method", "METHODS", "metrics",
    "Model", "MODEL_NAMES", "nearest_neighbours", "nmf", "objectives", "occlusion", "optvis", "plot", "preserved",
    "probability_of", "receptive_field", "record", "relu_rule", "rise", "saliency", "score_cam", "seed",
    "setup", "smooth", "SparseAutoencoder", "steered", "style", "style_transfer", "stylize", "swap_modules", "Targets", "texture_synthesis",
    "to_batch", "to_image", "to_input", "to_rgb", "top_patches", "train_fast_style", "train_sae", "TransformerNet",
    "WeightsUnavailable", "__version__",
]
# fmt: on
