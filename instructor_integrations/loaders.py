"""The public name of :mod:`instructor_integrations.ingest.loaders` (the code lives there, with all of ingestion).

``import instructor_integrations.loaders`` gives that very module object, so names, patches and
``isinstance`` checks are shared.
"""

from __future__ import annotations

import sys

from .ingest import loaders as _module

sys.modules[__name__] = _module
