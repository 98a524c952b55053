"""Every figure of the repository, drawn from results (seaborn on matplotlib) and saved
beside them: the notebooks' (:mod:`.stages`) and the searches' and curves'
(:mod:`.curves`), in one style (:mod:`.style`)."""

from vinet_utils.report.figures.curves import budget, protocol, reference, study, sweep
from vinet_utils.report.figures.stages import (ablations, budget_ablation, explained_variance,
                                               finetune_curves, ideal_structure, learning_curve,
                                               pca_scatter, prune_scores, same_vs_other,
                                               speed_vs_accuracy, vanishing_heatmaps)
from vinet_utils.report.figures.style import save

__all__ = ["ablations", "budget", "budget_ablation", "explained_variance", "finetune_curves",
           "ideal_structure", "learning_curve", "pca_scatter", "protocol", "prune_scores",
           "reference", "same_vs_other", "save", "speed_vs_accuracy", "study", "sweep",
           "vanishing_heatmaps"]
