"""``spm eval attribution``: a labelled world (``world``) scored on the consumer's path (``scoring``)."""

from spm.evaluation.attribution.scoring import EvaluationReport, Scorecard, evaluate, run_evaluation
from spm.evaluation.attribution.world import Dataset, Trap, generate_dataset

__all__ = [
    "Dataset",
    "EvaluationReport",
    "Scorecard",
    "Trap",
    "evaluate",
    "generate_dataset",
    "run_evaluation",
]
