"""Trender: find fast-rising GitHub repositories and keep their history."""
