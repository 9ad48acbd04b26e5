"""Spaces: tested companion code for the articles of 科学空间 (kexue.fm)."""
