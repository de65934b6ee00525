"""Click commands of memeprobe.store (registered by memeprobe.cli)."""
COMMANDS: list = []
