"""Features: pure indicators on panels, named feature sets, and (look-ahead) labels."""

from workbench.features.labels import direction_label, forward_return
from workbench.features.pipeline import FEATURE_SETS, FeatureSet, build_features, feature_atr, get_feature_set

__all__ = [
    "FEATURE_SETS",
    "FeatureSet",
    "build_features",
    "feature_atr",
    "get_feature_set",
    "forward_return",
    "direction_label",
]
