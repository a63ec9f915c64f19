"""The public name of :mod:`instructor_integrations.ingest.sources` (the code lives there, with all of ingestion).

``import instructor_integrations.sources`` gives that very module object, so names, patches and
``isinstance`` checks are shared.
"""

from __future__ import annotations

import sys

from .ingest import sources as _module

sys.modules[__name__] = _module
