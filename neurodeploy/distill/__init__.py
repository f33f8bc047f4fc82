"""Distillation: loss registry, teachers and the trainer."""
