"""vinet_utils: the machinery behind the VI-Net reproduction notebooks, in the order a
reader meets it.

- ``oavi/``         approximate vanishing ideals, standalone and scikit-learn shaped
                    (OAVI with ihb/bpcg oracles, ABM; monomial bookkeeping)
- ``network/``      the CIFAR ResNets, their data and one resumable training loop
- ``method/``       VI-Net itself: latents at a cut, one ideal per class, pruning, the
                    polynomial layer, the heads, VINet, inference preparation
- ``experiments/``  what judges it: the ablations, the searches, the budget curve, the
                    reference protocol, the base-quality study, throughput, benchmarks
- ``report/``       pages and figures, drawn from results files and the paper's numbers
                    only (they never import an experiment)
- ``workflow/``     running it: notebook parameters, profiles, stages, the pipeline
- ``common/``       what everything shares: results files, seeds, statistics, the
                    paper's numbers, progress bars
"""

__version__ = "0.1.0"
