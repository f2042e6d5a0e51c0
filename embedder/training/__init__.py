"""Fine-tuning the re-ID embedder: data, losses, network, loop, checkpoints and export."""
