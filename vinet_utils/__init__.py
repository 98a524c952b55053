"""vinet_utils: the machinery behind the VI-Net reproduction notebooks.

One module per concept:

- ``data``        datasets as in-memory uint8 tensors, batched augmentation
- ``models``      CIFAR ResNet-18/34, the paper's cut points, ``truncate``
- ``train``       one readable, resumable training loop
- ``oavi``        approximate vanishing ideals (OAVI, ABM) with ``monomials``
- ``pruning``     class-discriminative generator selection
- ``polynomial``  the polynomial layer G(z) = |M(z) C|
- ``results``     atomic JSON results that record how they were made
- ``params``      notebook parameter validation and profiles
"""

__version__ = "0.1.0"
