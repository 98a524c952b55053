"""vinet_utils: the machinery behind the VI-Net reproduction notebooks.

One module per concept:

- ``data``        datasets as in-memory uint8 tensors, batched augmentation
- ``models``      CIFAR ResNet-18/34, the paper's cut points, ``truncate``
- ``train``       one readable, resumable training loop
- ``latents``     pooled latents per cut and their PCA/tanh preprocessing
- ``monomials``   term bookkeeping for ``oavi``: deglex order, border, evaluation
- ``oavi``        approximate vanishing ideals (OAVI with ihb/bpcg oracles, ABM)
- ``ideals``      one ideal per class, cached with the run
- ``pruning``     class-discriminative generator selection
- ``polynomial``  the polynomial layer G(z) = |M(z) C|
- ``heads``       the VI-Net head and the ablation heads
- ``vinet``       VINet = truncated base + head, and its fine-tuning
- ``throughput``  interleaved inference throughput
- ``table``       the paper table from results files
- ``results``     atomic JSON results that record how they were made
- ``params``      notebook parameter validation; ``pipeline`` runs the notebooks
"""

__version__ = "0.1.0"
