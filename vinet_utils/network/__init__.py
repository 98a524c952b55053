"""The CIFAR ResNets: their data, the models and their cuts, one resumable training loop."""
