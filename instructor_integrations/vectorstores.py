"""Public name of :mod:`instructor_integrations.ingest.vectorstores` (the code lives there, with all of ingestion).

``import instructor_integrations.vectorstores`` gives that very module object, so names, patches and
``isinstance`` checks are shared.
"""

from __future__ import annotations

import sys

from .ingest import vectorstores as _module

sys.modules[__name__] = _module
