"""Screens: picker, dashboard, results, help and small prompts."""
