"""memeprobe: featurize memes once with frozen encoders, probe cross-split leakage, train light heads on a CPU."""
__version__ = "0.1.0"
