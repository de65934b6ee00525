"""Click commands of memeprobe.featurize (registered by memeprobe.cli)."""
COMMANDS: list = []
