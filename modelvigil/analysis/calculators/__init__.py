"""The calculators of the one analysis engine (`analysis.engine`): each metric an object fitted on
the reference, folding blocks of records into per-window state, finishing into per-window
columns, and carrying its alert rules."""

from modelvigil.analysis.calculators.arrival import Arrival
from modelvigil.analysis.calculators.base import Block, Calculator, Context
from modelvigil.analysis.calculators.classification import Classification
from modelvigil.analysis.calculators.feature_drift import FeatureDrift
from modelvigil.analysis.calculators.reference_accuracy import ReferenceAccuracy
from modelvigil.analysis.calculators.regression import Regression
from modelvigil.analysis.calculators.traffic import Traffic

# In the order the engine runs them (and their rules are evaluated).
CALCULATOR_TYPES: tuple[type[Calculator], ...] = (
    Traffic, Classification, ReferenceAccuracy, Arrival, Regression, FeatureDrift,
)  # fmt: skip

__all__ = [
    "CALCULATOR_TYPES", "Arrival", "Block", "Calculator", "Classification", "Context", "FeatureDrift",
    "ReferenceAccuracy", "Regression", "Traffic",
]  # fmt: skip
