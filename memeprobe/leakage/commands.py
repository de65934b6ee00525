"""Click commands of memeprobe.leakage (registered by memeprobe.cli)."""
COMMANDS: list = []
