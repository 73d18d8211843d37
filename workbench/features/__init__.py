"""Features: pure indicators on panels, named feature sets, incremental updates, labels, research tools."""

from workbench.features.incremental import IncrementalFeatures
from workbench.features.labels import direction_label, forward_return, triple_barrier, updown_label
from workbench.features.pipeline import (
    FEATURE_SETS,
    FeatureReport,
    FeatureSet,
    build_features,
    build_features_report,
    build_wide,
    feature_atr,
    feature_block,
    get_feature_set,
)

__all__ = [
    "FEATURE_SETS",
    "FeatureSet",
    "FeatureReport",
    "build_features",
    "build_features_report",
    "build_wide",
    "feature_block",
    "feature_atr",
    "get_feature_set",
    "IncrementalFeatures",
    "forward_return",
    "direction_label",
    "updown_label",
    "triple_barrier",
]
