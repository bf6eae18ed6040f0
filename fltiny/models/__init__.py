"""The model zoo: tiny, small and gateway variants for each task, with their trainable heads."""

from fltiny.models.zoo import ZOO, ZooModel, get_model

__all__ = ["ZOO", "ZooModel", "get_model"]
