"""Click commands of memeprobe.heads (registered by memeprobe.cli)."""
COMMANDS: list = []
