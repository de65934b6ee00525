"""The self-contained HTML pages (the leakage report, the explain page): jinja2 templates rendered with
autoescaping, and data embedded as JSON that cannot end its ``<script>`` element."""
from __future__ import annotations

import json

import jinja2


def render(package: str, template: str, **context) -> str:
    """Template ``template`` of ``package``'s ``templates`` folder, rendered with HTML autoescaping."""
    env = jinja2.Environment(loader=jinja2.PackageLoader(package, "templates"), autoescape=True, trim_blocks=False)
    return env.get_template(template).render(**context)


def script_json(doc) -> str:
    """JSON safe inside ``<script>`` (no ``<``, ``>``, ``&`` that could end the element)."""
    return (json.dumps(doc, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
            .replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))
