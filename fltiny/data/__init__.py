"""Offline datasets with federated partitions.

``load_dataset(name)`` returns a :class:`Dataset`; each dataset has a default
:class:`Scenario` that says which groups (users, homes) are the factory data the initial
model is trained on, which are fleet devices, and which are held out for evaluation.
"""

from fltiny.data.base import Dataset, Scenario, Split
from fltiny.data.registry import DATASETS, load_dataset

__all__ = ["DATASETS", "Dataset", "Scenario", "Split", "load_dataset"]
