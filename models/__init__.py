"""Network zoo (installed as ``bioSNN.models``): one module per thesis network, built only from ``bioSNN`` parts."""

from __future__ import annotations

from typing import Literal, get_args

ModelName = Literal["vgg5", "vgg9", "vgg11", "vgg16", "resnet20", "mlp"]  # the names build_spiking takes
MODELS = get_args(ModelName)


def build_spiking(
    name: str,
    input_shape: tuple[int, ...],
    n_classes: int,
    width: float = 1.0,
    hidden: int = 1024,
    dropout: float = 0.2,
):
    """A VGG (``vgg5``, ``vgg9``, ``vgg11``, ``vgg16``), ``resnet20`` or ``mlp`` (one hidden layer of ``hidden``
    neurons) as a :class:`bioSNN.nn.network.SpikingNet`."""
    from .mlp import mlp
    from .resnet import resnet20
    from .vgg import PLANS, vgg

    if name == "mlp":
        return mlp(tuple(input_shape), n_classes, (hidden,))
    if name == "resnet20":
        return resnet20(tuple(input_shape), n_classes, width)
    if name in PLANS:
        return vgg(name, tuple(input_shape), n_classes, width, hidden, dropout)
    raise ValueError(f"unknown model {name!r}; choose one of {list(MODELS)}")
