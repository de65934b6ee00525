"""memeprobe.leakage"""
