"""memeprobe.store"""
