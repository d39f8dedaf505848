"""Model builders (LeNet-5, MobileNet v1) and safe loading of user models."""

from workbench.models.loading import check_model, load_user_model
from workbench.models.zoo import MODELS, build_model, lenet5, lenet5_classic, mobilenet_v1

__all__ = ["MODELS", "build_model", "check_model", "lenet5", "lenet5_classic", "load_user_model", "mobilenet_v1"]
