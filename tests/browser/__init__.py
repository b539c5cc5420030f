"""Tests of swap.js and the demo site in a real headless Chromium against the real gateway."""
