"""Human-facing output: a self-contained HTML page (and PNGs) per run."""
from neurodeploy.report.html import write_html, write_record_html

__all__ = ["write_html", "write_record_html"]
