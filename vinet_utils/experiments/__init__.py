"""What judges VI-Net: the ablations, the searches, the budget curve, the reference protocol,
the study, throughput, benchmarks."""
