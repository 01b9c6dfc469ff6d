"""Recipes: the one place a Pipeline is assembled. ``load`` reads YAML over DEFAULTS with overrides; ``build`` turns a recipe into stages and a Pipeline."""
