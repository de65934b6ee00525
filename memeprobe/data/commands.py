"""Click commands of memeprobe.data (registered by memeprobe.cli)."""
COMMANDS: list = []
