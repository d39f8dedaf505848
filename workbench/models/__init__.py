"""Model builders (LeNet-5, MobileNet v1). Loading a user's model safely is ``workbench.loading``."""

from workbench.models.zoo import MODELS, ZOO, build_model, lenet5, lenet5_classic, mobilenet_v1

__all__ = ["MODELS", "ZOO", "build_model", "lenet5", "lenet5_classic", "mobilenet_v1"]
