"""memeprobe.heads"""
