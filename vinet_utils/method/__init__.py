"""VI-Net itself: latents at a cut, one ideal per class, pruning, the polynomial layer, the heads, VINet."""
